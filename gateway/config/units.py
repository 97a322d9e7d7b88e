"""Parsing of the configuration's units: durations ("10s", "7d", "1h30m") and sizes ("512MiB")."""

from __future__ import annotations

import re

_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                   "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d|w)")
_SIZE_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
               "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40, "K": 2**10, "M": 2**20,
               "G": 2**30, "T": 2**40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
#: Longest duration: what a signed 64-bit count of nanoseconds holds (about 292 years), which
#: is also the whole span the store's timestamps can cover, so no longer age limit means more.
MAX_DURATION_S = (2**63 - 1) // 10**9


class Duration(float):
    """A duration in seconds that remembers how it was written."""

    text: str

    def __new__(cls, seconds: float, text: str | None = None):
        self = super().__new__(cls, seconds)
        self.text = text if text is not None else format_duration(seconds)
        return self

    @property
    def ns(self) -> int:
        return round(float(self) * 1e9)

    def __repr__(self) -> str:
        return f"Duration({self.text!r})"


class ByteSize(int):
    """A size in bytes that remembers how it was written."""

    text: str

    def __new__(cls, size: int, text: str | None = None):
        self = super().__new__(cls, size)
        self.text = text if text is not None else format_size(size)
        return self

    def __repr__(self) -> str:
        return f"ByteSize({self.text!r})"


def parse_duration(text: str) -> Duration:
    """Parses "250ms", "10s", "1h30m", "7d". Raises ValueError naming what is wrong."""
    if not isinstance(text, str):
        raise ValueError(f"expected a duration string such as \"10s\", got {text!r}")
    s = text.strip()
    if not s:
        raise ValueError("empty duration")
    pos, total = 0, 0.0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if not m:
            raise ValueError(f"invalid duration {text!r} (use a number and a unit: ns, us, ms, s, m, h, d, w)")
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if not total <= MAX_DURATION_S:
        raise ValueError(f"duration {text!r} is too long: at most {MAX_DURATION_S // 86400}d "
                         f"(what a 64-bit count of nanoseconds holds)")
    return Duration(total, s)


def format_duration(seconds: float) -> str:
    if seconds == 0:
        return "0s"
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and float(seconds / size).is_integer():
            return f"{int(seconds // size)}{unit}"
    if (seconds * 1000).is_integer():
        return f"{int(seconds * 1000)}ms"
    return f"{seconds}s"


def parse_size(text: str | int) -> ByteSize:
    """Parses "512MiB", "1GB", "4096" (bytes). Raises ValueError naming what is wrong."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise ValueError(f"size must not be negative, got {text}")
        return ByteSize(text, str(text))
    if not isinstance(text, str):
        raise ValueError(f"expected a size such as \"512MiB\", got {text!r}")
    m = _SIZE.match(text)
    unit = m.group(2).upper() if m else None
    if not m or unit not in _SIZE_UNITS:
        raise ValueError(f"invalid size {text!r} (use a number and a unit: B, KiB, MiB, GiB, KB, MB, GB)")
    return ByteSize(int(float(m.group(1)) * _SIZE_UNITS[unit]), text.strip())


def format_size(size: int) -> str:
    for unit, n in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= n and size % n == 0:
            return f"{size // n}{unit}"
    return f"{size}B"
