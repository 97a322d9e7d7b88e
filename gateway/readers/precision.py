"""The precision of a local reading's timestamp: the I2C, GPIO and host readers store their
readings' times rounded to it.

A reading's time is not known to the nanosecond: it is when the poll happened to run, give or
take the event loop's and the bus's delays. Telegraf rounds the timestamps of collected metrics
to its ``precision`` for that reason (by default of the order of the collection interval, at
most 1 s). The store pays for those nanoseconds: the clock's jitter leaves every timestamp
difference different, about 20 bits a point in the WAL, where rounded readings at a steady
interval pack in a bit or less (``docs/store.md``, "Timestamps of local readings").

The default precision is the coarsest of 1 s, 1 ms, 1 µs and 1 ns that is at most half the
shortest time between two readings of one series. Two readings then never round to one time (so
neither replaces the other in the store, which keeps one point per timestamp) and stay in order.
A precision set in the configuration may be at most that shortest time.
"""

from __future__ import annotations

from gateway.config.units import Duration, format_duration

#: The precisions a default is chosen from, coarsest first: nanoseconds, as written.
UNITS = ((10**9, "1s"), (10**6, "1ms"), (10**3, "1us"), (1, "1ns"))


def derived_precision(shortest_gap: float) -> Duration:
    """The default precision for readings at least ``shortest_gap`` seconds apart (0: readings
    may come at any time, such as edges without debounce: no rounding)."""
    gap_ns = round(shortest_gap * 1e9)
    for unit, text in UNITS:
        if 2 * unit <= gap_ns:
            return Duration(unit / 1e9, text)
    return Duration(1e-9, "1ns")


def precision_problem(precision: Duration, shortest_gap: float, why: str) -> str | None:
    """A message when ``precision`` is longer than the shortest time between two readings of a
    series (``why`` says where that time comes from); None when it is fine."""
    if precision.ns < 1:
        return f"must be at least 1ns, got {precision.text}"
    if precision.ns > round(shortest_gap * 1e9):
        return (f"{precision.text} is longer than the {format_duration(shortest_gap)} {why}: two "
                f"readings could be stored at one time and one would replace the other")
    return None


def rounded(time_ns: int, precision_ns: int) -> int:
    """``time_ns`` rounded to the nearest multiple of ``precision_ns`` (halves up)."""
    if precision_ns <= 1:
        return time_ns
    return (time_ns + precision_ns // 2) // precision_ns * precision_ns
