"""Run-time values of the Flux subset besides Python's int, float, str, bool, None (null),
dict (record), list (array) and compiled regexes: times, durations, functions and streams."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any, Callable

from gateway.query import ast
from gateway.query.parser import Duration

__all__ = ["Time", "Duration", "Closure", "Builtin", "Stream", "type_name", "format_time",
           "format_times"]


class Time(int):
    """A point in time, ns since the Unix epoch (an int, so it compares and sorts as one)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Time({format_time(self)})"


def format_time(ns: int) -> str:
    """RFC 3339 in UTC with as many fraction digits as needed (as InfluxDB writes times)."""
    seconds, frac = divmod(int(ns), 10**9)
    try:
        text = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    except (OverflowError, ValueError, OSError):
        return str(int(ns))
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"


def format_times(values) -> list[str]:
    """:func:`format_time` of each value (an empty text for None), for a column: the date is
    formatted once a day and the time of day by arithmetic, instead of a datetime a value."""
    out = []
    dates: dict[int, str | None] = {}
    for v in values:
        if v is None:
            out.append("")
            continue
        if not isinstance(v, int):
            out.append(format_time(v))   # (as a single value would fail or be written)
            continue
        seconds, frac = divmod(int(v), 10**9)
        day, second = divmod(seconds, 86400)
        date = dates.get(day, "")
        if date == "":
            midnight = format_time(day * 86400 * 10**9)   # "YYYY-MM-DDT00:00:00Z"
            date = dates[day] = midnight[:-9] if midnight.endswith("T00:00:00Z") else None
        if date is None:   # a day that datetime cannot write
            out.append(format_time(v))
            continue
        hour, second = divmod(second, 3600)
        minute, second = divmod(second, 60)
        text = f"{date}{hour:02d}:{minute:02d}:{second:02d}"
        if frac:
            text += "." + f"{frac:09d}".rstrip("0")
        out.append(text + "Z")
    return out


@dataclass(eq=False)
class Closure:
    """A function literal and the scope it was defined in (a snapshot: no recursion)."""

    node: ast.Function
    scope: dict = field(repr=False)

    def __eq__(self, other) -> bool:   # plans compare by the function's text, not its scope
        return isinstance(other, Closure) and self.node == other.node

    __hash__ = None


@dataclass(frozen=True, eq=False)
class Builtin:
    name: str
    call: Callable[..., Any]       # (interpreter, args: dict, pos) -> value
    pipe: str | None = "tables"    # the parameter that takes the piped value

    def __eq__(self, other) -> bool:
        return isinstance(other, Builtin) and self.name == other.name

    def __hash__(self) -> int:
        return hash(self.name)


@dataclass(frozen=True)
class Stream:
    """A stream of tables not yet read: the operations from ``from()`` on, in order."""

    ops: tuple = field(default_factory=tuple)

    def then(self, op) -> "Stream":
        return Stream(self.ops + (op,))


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Time):
        return "time"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Duration):
        return "duration"
    if isinstance(value, dict):
        return "record"
    if isinstance(value, list):
        return "array"
    if isinstance(value, (Closure, Builtin)):
        return "function"
    if isinstance(value, Stream):
        return "stream of tables"
    if hasattr(value, "pattern"):
        return "regexp"
    return type(value).__name__
