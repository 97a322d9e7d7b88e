"""Configuration of the GPIO reader: one ``[[readers.gpio]]`` table with its inputs (see sample.toml)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from gateway.config.schema import non_negative, positive, setting
from gateway.config.units import Duration, parse_duration
from gateway.readers.precision import derived_precision, precision_problem

#: BCM numbers (17), gpiozero names ("GPIO17", "BCM17", "BOARD11", "J8:11").
_PIN_NAME = re.compile(r"^(GPIO|BCM|BOARD|WPI|J8:)?\d{1,3}$", re.IGNORECASE)


def _pin(value) -> None:
    if isinstance(value, bool):
        raise ValueError(f"expected a pin number or name, got {value!r}")
    if isinstance(value, int):
        if not 0 <= value <= 53:
            raise ValueError(f"BCM pin numbers are 0..53, got {value}")
    elif not _PIN_NAME.match(value):
        raise ValueError(f"expected a pin such as 17, \"GPIO17\" or \"BOARD11\", got {value!r}")


def _label(value: str) -> None:
    if value and (not value.strip() or "\n" in value):
        raise ValueError(f"must be a single line of text, got {value!r}")


@dataclass
class InputConfig:
    pin: int | str = setting(check=_pin, doc="BCM number or gpiozero pin name")
    name: str = setting("", check=_label, doc="the 'input' tag; default gpio<pin>")
    mode: Literal["state", "counter"] = setting(
        "state", doc="state: a point per change; counter: counts pulses and reports a rate")
    pull: Literal["up", "down", "none"] = setting("up", doc="internal pull resistor")
    active_low: bool = setting(True, doc="true: low level means active (a contact to GND)")
    debounce: Duration = setting(default_factory=lambda: parse_duration("20ms"), check=non_negative,
                                 doc="a level must hold this long to count; 0 turns it off")
    count_on: Literal["activate", "deactivate", "both"] = setting(
        "activate", doc="counter: which debounced changes count as a pulse")
    scale: float | None = setting(None, doc="counter: units per pulse; adds total and rate fields")
    tags: dict[str, str] = setting(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name and isinstance(self.pin, (int, str)):
            self.name = f"gpio{self.pin}" if isinstance(self.pin, int) else str(self.pin).lower()

    def validate(self):
        if self.mode == "state" and self.scale is not None:
            yield "scale", "only a counter input has a scale"
        for key in self.tags:
            if key in ("input", "pin"):
                yield f"tags.{key}", f"tag '{key}' is set by the reader itself"


@dataclass
class Config:
    measurement: str = setting("gpio", check=_label)
    report_interval: Duration = setting(
        default_factory=lambda: parse_duration("60s"), check=positive,
        doc="how often every input's current state (or count and rate) is stored")
    precision: Duration | None = setting(
        None, doc="the points' times are stored rounded to this; default: the coarsest of 1s, "
                  "1ms, 1us, 1ns at most half the shortest debounce of a state input (1ms at "
                  "20ms; 1ns without debounce) or report_interval")
    inputs: list[InputConfig] = setting(default_factory=list)

    def __post_init__(self) -> None:
        self.precision = self.effective_precision   # shown by check-config

    def shortest_gap(self) -> float:
        """The shortest time between two points of an input: accepted changes of a state input
        are at least its debounce apart (edges without debounce may come at any time), reports
        report_interval apart."""
        gaps = [float(self.report_interval)]
        gaps += [float(i.debounce) for i in self.inputs if i.mode == "state"]
        return min(gaps)

    @property
    def effective_precision(self) -> Duration:
        """The precision of the points' times: configured, or from shortest_gap()."""
        if self.precision is not None:
            return self.precision
        return derived_precision(self.shortest_gap())

    def validate(self):
        if self.precision is not None:
            problem = precision_problem(self.precision, max(self.shortest_gap(), 1e-9),
                                        "between two points of an input (a state input's "
                                        "debounce or report_interval)")
            if problem:
                yield "precision", problem
        names, pins = {}, {}
        for i, inp in enumerate(self.inputs):
            if inp.name in names:
                yield f"inputs[{i}].name", f"input name {inp.name!r} is used by inputs[{names[inp.name]}] too"
            names.setdefault(inp.name, i)
            key = str(inp.pin).upper()
            if key in pins:
                yield f"inputs[{i}].pin", f"pin {inp.pin} is used by inputs[{pins[key]}] too"
            pins.setdefault(key, i)
