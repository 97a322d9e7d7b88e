"""Configuration of the I2C reader: one ``[[readers.i2c]]`` table per bus (see sample.toml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gateway.config.schema import in_range, non_negative, positive, setting
from gateway.config.units import Duration, parse_duration
from gateway.readers.i2c.ads1115 import DATA_RATE_CODES, PGA_CODES
from gateway.readers.precision import derived_precision, precision_problem

#: part -> (driver module, class, allowed addresses, default address, default measurement)
PARTS = {
    "bme280": ("gateway.readers.i2c.bme280", "BME280", (0x76, 0x77), 0x76, "environment"),
    "sht3x": ("gateway.readers.i2c.sht3x", "SHT3x", (0x44, 0x45), 0x44, "environment"),
    "sht4x": ("gateway.readers.i2c.sht4x", "SHT4x", (0x44, 0x45, 0x46), 0x44, "environment"),
    "ads1115": ("gateway.readers.i2c.ads1115", "ADS1115", (0x48, 0x49, 0x4A, 0x4B), 0x48, "adc"),
}
#: Other names the parts are sold under.
PART_ALIASES = {"sht30": "sht3x", "sht31": "sht3x", "sht35": "sht3x", "sht40": "sht4x",
                "sht41": "sht4x", "sht45": "sht4x"}


def _one_of(allowed, what: str):
    def check(value) -> None:
        if value not in allowed:
            raise ValueError(f"{what} must be one of {', '.join(str(a) for a in sorted(allowed))}, "
                             f"got {value}")
    return check


def _tag_safe(value: str) -> None:
    if value and (not value.strip() or "\n" in value):
        raise ValueError(f"must be a single line of text, got {value!r}")


@dataclass
class ChannelConfig:
    """One ADS1115 input, measured single-ended against GND."""

    input: int = setting(check=in_range(0, 3), doc="AIN0..AIN3")
    name: str = setting("", check=_tag_safe, doc="channel tag; default ain<input>")
    full_scale_v: float = setting(4.096, check=_one_of(PGA_CODES, "full_scale_v"),
                                  doc="PGA full-scale range in volts")
    data_rate: int = setting(128, check=_one_of(DATA_RATE_CODES, "data_rate"),
                             doc="samples per second")
    scale: float | None = setting(None, doc="value = voltage * scale + offset (adds a 'value' field)")
    offset: float = setting(0.0)


@dataclass
class SensorConfig:
    part: str = setting(doc="bme280, sht3x (sht30/31/35), sht4x (sht40/41/45) or ads1115")
    address: int | None = setting(None, doc="7-bit address; default the part's usual one")
    name: str = setting("", check=_tag_safe, doc="the 'sensor' tag; default <part>-<address>")
    measurement: str = setting("", check=_tag_safe, doc="default environment (adc for ads1115)")
    interval: Duration = setting(default_factory=lambda: parse_duration("10s"), check=positive)
    precision: Duration | None = setting(
        None, doc="readings' times are stored rounded to this; default: the coarsest of 1s, "
                  "1ms, 1us at most half the time between polls (1s at 10s, 1ms at 1s)")
    tags: dict[str, str] = setting(default_factory=dict, doc="extra tags on every point")
    stuck_after: int | None = setting(
        None, check=non_negative,
        doc="identical raw readings in a row that mark the part stuck (0 never; default 30, "
            "ads1115 0)")
    oversampling: int = setting(1, check=_one_of((1, 2, 4, 8, 16), "oversampling"),
                                doc="bme280: oversampling of all three measurements")
    compensation: Literal["integer", "double"] = setting("integer", doc="bme280 formulas")
    repeatability: Literal["high", "medium", "low"] = setting("high", doc="sht3x/sht4x")
    channels: list[ChannelConfig] = setting(default_factory=list, doc="ads1115 inputs")

    def __post_init__(self) -> None:
        self.part = PART_ALIASES.get(self.part.lower(), self.part.lower()) if isinstance(self.part, str) else self.part
        if self.part in PARTS:
            if self.address is None:
                self.address = PARTS[self.part][3]
            if not self.name:
                self.name = f"{self.part}-{self.address:02x}"
            if not self.measurement:
                self.measurement = PARTS[self.part][4]

    def validate(self):
        if self.part not in PARTS:
            yield "part", (f"unknown part {self.part!r} (known: {', '.join(PARTS)}, "
                           f"{', '.join(PART_ALIASES)})")
            return
        allowed = PARTS[self.part][2]
        if self.address not in allowed:
            yield "address", (f"a {self.part} answers at {', '.join(f'0x{a:02x}' for a in allowed)}, "
                              f"got 0x{self.address:02x}" if isinstance(self.address, int)
                              else f"expected an integer address, got {self.address!r}")
        if self.part == "ads1115":
            if not self.channels:
                yield "channels", "an ads1115 needs at least one [[...channels]] table"
            seen = set()
            for i, ch in enumerate(self.channels):
                label = ch.name or f"ain{ch.input}"
                if label in seen:
                    yield f"channels[{i}].name", f"channel name {label!r} is used twice"
                seen.add(label)
        elif self.channels:
            yield "channels", f"only an ads1115 has channels, not a {self.part}"
        for k, v in self.tags.items():
            if k in ("sensor", "part", "bus", "address", "channel"):
                yield f"tags.{k}", f"tag '{k}' is set by the reader itself"


@dataclass
class Config:
    bus: int = setting(1, check=in_range(0, 255), doc="the N of /dev/i2c-N")
    sensors: list[SensorConfig] = setting(default_factory=list)
    retry_initial: Duration = setting(default_factory=lambda: parse_duration("1s"), check=positive,
                                      doc="first retry after a failed read; doubles each time")
    retry_max: Duration = setting(default_factory=lambda: parse_duration("5m"), check=positive,
                                  doc="cap of the retry back-off")
    jitter: float = setting(0.05, check=in_range(0.0, 0.5),
                            doc="fraction of the interval by which each poll is shifted at random")
    #: Set on the built-in configuration for the emulated rig: it polls nothing on real hardware.
    emulated_rig_only: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        for sensor in self.sensors:   # shown by check-config
            sensor.precision = self.precision_of(sensor)

    def shortest_gap(self, sensor: SensorConfig) -> float:
        """The shortest time between two polls of ``sensor`` (its interval less the jitter)."""
        return float(sensor.interval) * (1.0 - self.jitter)

    def precision_of(self, sensor: SensorConfig) -> Duration:
        """The precision of ``sensor``'s readings' times: configured, or from its interval."""
        if sensor.precision is not None:
            return sensor.precision
        return derived_precision(self.shortest_gap(sensor))

    def validate(self):
        if self.retry_max < self.retry_initial:
            yield "retry_max", f"must not be shorter than retry_initial ({self.retry_initial.text})"
        seen_addr, seen_name = {}, set()
        for i, s in enumerate(self.sensors):
            if s.address in seen_addr:
                yield f"sensors[{i}].address", (f"0x{s.address:02x} is already used by sensors"
                                                f"[{seen_addr[s.address]}] on bus {self.bus}")
            seen_addr.setdefault(s.address, i)
            if s.name in seen_name:
                yield f"sensors[{i}].name", f"sensor name {s.name!r} is used twice"
            seen_name.add(s.name)
            if s.precision is not None:
                problem = precision_problem(s.precision, self.shortest_gap(s),
                                            "between two polls (interval less jitter)")
                if problem:
                    yield f"sensors[{i}].precision", problem
