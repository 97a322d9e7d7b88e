"""When task runs are due: ``every`` aligned to the Unix epoch (wall clock), or a 5-field cron
expression in UTC (minute hour day-of-month month day-of-week; ``*``, ``*/n``, ``a-b``,
``a-b/n`` and lists), each shifted by ``offset``.

A run is named by its *scheduled time* t; it executes at t + offset with ``now()`` = t, and
with ``every`` covers [t - every, t).
"""

from __future__ import annotations

import time

_MINUTE = 60 * 10**9
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12),
           ("day of week", 0, 7))
#: How far ahead a cron search looks before giving up (an impossible date such as 31 Feb).
_CRON_HORIZON_MINUTES = 366 * 24 * 60 * 5


class CronError(ValueError):
    pass


class Cron:
    def __init__(self, text: str) -> None:
        parts = text.split()
        if len(parts) != 5:
            raise CronError(f"expected 5 fields (minute hour day month weekday), got {len(parts)}")
        self.text = text
        self.sets = [self._field(p, *f) for p, f in zip(parts, _FIELDS)]
        self.any_day = parts[2] == "*"
        self.any_weekday = parts[4] == "*"

    @staticmethod
    def _field(text: str, what: str, lo: int, hi: int) -> frozenset[int]:
        out = set()
        for item in text.split(","):
            step = 1
            if "/" in item:
                item, _, s = item.partition("/")
                if not s.isdigit() or int(s) == 0:
                    raise CronError(f"bad step in {what} field {text!r}")
                step = int(s)
            if item == "*":
                a, b = lo, hi
            elif "-" in item:
                x, _, y = item.partition("-")
                if not (x.isdigit() and y.isdigit()):
                    raise CronError(f"bad range in {what} field {text!r}")
                a, b = int(x), int(y)
            elif item.isdigit():
                a = b = int(item)
            else:
                raise CronError(f"bad {what} field {text!r}")
            if not lo <= a <= b <= hi:
                raise CronError(f"{what} field {text!r} out of range {lo}-{hi}")
            out.update(range(a, b + 1, step))
        if what == "day of week" and 7 in out:   # 7 is Sunday too
            out.discard(7)
            out.add(0)
        return frozenset(out)

    def matches(self, minute_ns: int) -> bool:
        tm = time.gmtime(minute_ns // 10**9)
        minute, hour, dom, month, dow = self.sets
        if tm.tm_min not in minute or tm.tm_hour not in hour or tm.tm_mon not in month:
            return False
        day_ok = tm.tm_mday in dom
        weekday_ok = (tm.tm_wday + 1) % 7 in dow
        if self.any_day or self.any_weekday:   # cron: both restricted means either matches
            return day_ok and weekday_ok
        return day_ok or weekday_ok

    def next_after(self, t: int) -> int | None:
        m = (t // _MINUTE + 1) * _MINUTE
        for _ in range(_CRON_HORIZON_MINUTES):
            if self.matches(m):
                return m
            m += _MINUTE
        return None


def next_scheduled(spec, after: int) -> int | None:
    """The first scheduled time strictly after ``after`` (ns), or None."""
    if spec.cron is not None:
        return spec.cron.next_after(after)
    return (after // spec.every + 1) * spec.every


def previous_scheduled(spec, at_or_before: int) -> int | None:
    """The last scheduled time <= ``at_or_before``."""
    if spec.cron is not None:
        m = at_or_before // _MINUTE * _MINUTE
        for _ in range(_CRON_HORIZON_MINUTES):
            if spec.cron.matches(m):
                return m
            m -= _MINUTE
        return None
    return at_or_before // spec.every * spec.every


def run_covering(spec, ts: int) -> int | None:
    """The scheduled time of the run whose window [t - period, t) holds ``ts``."""
    return next_scheduled(spec, ts)


__all__ = ["Cron", "CronError", "next_scheduled", "previous_scheduled", "run_covering"]
