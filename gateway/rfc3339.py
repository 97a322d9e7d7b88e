"""RFC 3339 times as nanoseconds since the epoch: one parser for MQTT payloads and Flux.

Full precision (nine fraction digits), any offset, a leap second as the next second. Flux also
writes a date alone (midnight UTC) and a time without a zone (UTC): :func:`parse_flux_time`.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
                      r"(?:([Zz])|([+-])(\d{2}):(\d{2}))")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_SECOND = datetime(1970, 1, 1, 0, 0, 1) - datetime(1970, 1, 1)


def parse_rfc3339(text: str) -> int:
    """Nanoseconds since the epoch; ValueError for anything that is not RFC 3339."""
    m = _RFC3339.fullmatch(text)
    if not m:
        raise ValueError(f"{text!r} is not an RFC 3339 time such as 2024-05-01T12:00:00Z")
    y, mo, d, h, mi, s = (int(m.group(i)) for i in range(1, 7))
    try:
        base = datetime(y, mo, d, h, mi, min(s, 59), tzinfo=timezone.utc)
    except ValueError as e:
        raise ValueError(f"{text!r}: {e}") from None
    seconds = (base - _EPOCH) // _SECOND + (s - min(s, 59))
    frac = m.group(7) or ""
    ns = seconds * 1_000_000_000 + int(frac.ljust(9, "0") or 0)
    if m.group(9):
        offset = (int(m.group(10)) * 60 + int(m.group(11))) * 60_000_000_000
        ns -= offset if m.group(9) == "+" else -offset
    return ns


def parse_flux_time(text: str) -> int:
    """As :func:`parse_rfc3339`, also for a date alone (midnight UTC) and for a time with ``T``
    but no zone (UTC), as Flux time literals are written."""
    if _DATE.fullmatch(text):
        text += "T00:00:00Z"
    elif "T" in text and not re.search(r"(Z|[+-]\d{2}:\d{2})$", text):
        text += "Z"
    return parse_rfc3339(text)
