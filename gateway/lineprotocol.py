"""InfluxDB line protocol: escaping, series keys, parsing and serialization.

The rules are those of ``docs/format/line-protocol.md``, which are InfluxDB's own parser's. In
short: measurement names escape comma and space; tag keys and tag values also the equals sign;
field keys also the double quote; string field values escape double quote and backslash. A
backslash in a name is an ordinary character unless a character its kind escapes follows it, so
it is written as itself; a name ending in a backslash cannot be written (the backslash would
escape the separator after it) and is refused. Names cannot hold control characters (newline,
tab, ...) and must not start with ``_``, which InfluxDB reserves.

Parsing happens in C (``native/src/lineproto.c``) straight into a :class:`gateway.batch.Batch`;
a bad line is reported as a :class:`LineProtocolError` with its line and column while the good
lines of the same input are kept (InfluxDB's partial write).
"""

from __future__ import annotations

import array
import itertools
import math
import time
from dataclasses import dataclass, field as dc_field
from typing import Any, Mapping, Sequence

from gateway._native import ffi, lib
from gateway.batch import Batch
from gateway.datamodel import (BOOL, INT64_MAX, INT64_MIN, STRING, UINT64_MAX, WORD_TYPECODES,
                               UInt, escape_field_key, escape_key, escape_measurement, escape_string,
                               series_key, split_series_key)
from gateway.errors import LineProtocolError, NativeError


#: Length of one timestamp unit in nanoseconds, by the precision names of the InfluxDB v2 API.
PRECISIONS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
#: How many bad lines :func:`parse` describes by default; all of them are counted.
MAX_ERRORS_KEPT = 100
#: Longest string field value, in UTF-8 bytes (the line protocol limit, 64 KiB).
MAX_STRING_BYTES = lib.GW_MAX_STRING_LEN
MIN_TIME_NS, MAX_TIME_NS = lib.GW_LP_MIN_TIME, lib.GW_LP_MAX_TIME


# ---- serialization ----------------------------------------------------------------------

def _check_not_reserved(what: str, name: str) -> None:
    if name.startswith("_"):
        raise ValueError(f"{what} {name!r} starts with '_', which line protocol reserves")


def format_value(value) -> str:
    """A field value in line protocol: ``1.5``, ``-3i``, ``7u`` (:class:`UInt`), ``true``, ``"s"``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, UInt):
        if not 0 <= value <= UINT64_MAX:
            raise ValueError(f"unsigned value out of range: {int(value)}")
        return f"{int(value)}u"
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(f"integer value out of range: {value}")
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} cannot be written in line protocol")
        return repr(value)  # the shortest text that reads back to the same bits
    if isinstance(value, str):
        if len(value.encode()) > MAX_STRING_BYTES:
            raise ValueError(f"string value longer than {MAX_STRING_BYTES} bytes")
        return f'"{escape_string(value)}"'
    raise TypeError(f"unsupported field value type {type(value).__name__}")


def format_line(measurement: str, tags: Mapping[str, str], fields: Mapping[str, object],
                time_ns: int | None = None) -> str:
    """One line of line protocol (no trailing newline), tags in canonical order.

    Raises ValueError for what line protocol cannot express: no fields, empty or reserved
    names, control characters in names, NaN or infinite floats, out-of-range numbers.
    Empty tag values are left out, as the spec asks.
    """
    _check_not_reserved("measurement", measurement)
    if measurement.startswith("#"):
        raise ValueError(f"measurement {measurement!r} starts with '#': the line would be a comment")
    parts = [escape_measurement(measurement)]
    for k in sorted(tags, key=lambda t: t.encode()):
        v = tags[k]
        if v == "":
            continue
        _check_not_reserved("tag key", k)
        parts.append(f"{escape_key(k, 'tag key')}={escape_key(v, 'tag value')}")
    if not fields:
        raise ValueError(f"point {measurement!r} has no fields")
    field_set = []
    for k, v in fields.items():
        _check_not_reserved("field key", k)
        field_set.append(f"{escape_field_key(k)}={format_value(v)}")
    line = ",".join(parts) + " " + ",".join(field_set)
    if time_ns is not None:
        if not MIN_TIME_NS <= time_ns <= MAX_TIME_NS:
            raise ValueError(f"timestamp out of range: {time_ns}")
        line += f" {int(time_ns)}"
    return line


def _words(values, typecode: str, what: str, n: int | None = None):
    """A C view of 8-byte items: buffers as they are, other sequences through array()."""
    try:
        view = memoryview(values)
    except TypeError:
        view = memoryview(array.array(typecode, values))
    if view.itemsize not in (1, 8) or view.nbytes % 8 or not view.c_contiguous:
        raise ValueError(f"{what} must be a contiguous buffer of 8-byte items "
                         f"(got {view.itemsize}-byte items)")
    if n is not None and view.nbytes // 8 != n:
        raise ValueError(f"{what} holds {view.nbytes // 8} items, expected {n}")
    return view, ffi.from_buffer("uint64_t[]", view.cast("B"))


def check_series_key(key: bytes) -> None:
    """Raises ValueError naming the rule when ``key`` (escaped, UTF-8) is not a series key the
    C parser accepts: reserved names, control characters, UTF-8, length."""
    rc = lib.gw_lp_check_series_key(key, len(key))
    if rc:
        reason = ffi.string(lib.gw_lp_reason(rc)).decode()
        raise ValueError(f"series key {key.decode(errors='replace')!r} cannot be written "
                         f"as line protocol: {reason}")


def serialize_series(series_key: str | bytes, type: int, timestamps, values, *,
                     nonfinite: str = "raise") -> bytes:
    """Line protocol for every point of one series: ``key=value timestamp\\n`` per point.

    ``timestamps`` is a buffer of int64 (or a sequence of ints); ``values`` a buffer of the
    8-byte value words of the type (float64, int64, uint64, 0/1 for bool; or a sequence of
    Python values), or a sequence of str for strings. NaN and infinities have no line protocol
    form: ``nonfinite="raise"`` (default) raises ValueError naming the first such point,
    ``"skip"`` leaves them out (count them with :func:`count_nonfinite`).
    """
    key = series_key.encode() if isinstance(series_key, str) else bytes(series_key)
    check_series_key(key)
    if nonfinite not in ("raise", "skip"):
        raise ValueError(f"nonfinite must be 'raise' or 'skip', got {nonfinite!r}")
    if type == STRING:
        return _serialize_strings(key, timestamps, values)
    codes = WORD_TYPECODES
    if type not in codes:
        raise ValueError(f"unknown value type {type}")
    ts_view, ts_c = _words(timestamps, "q", "timestamps")
    n = ts_view.nbytes // 8
    val_view, val_c = _words(values, codes[type], "values", n)
    cap = lib.gw_lp_format_bound(len(key), n)
    out = bytearray(cap)
    skipped = ffi.new("uint64_t *")
    written = lib.gw_lp_format_series(key, len(key), type, ffi.cast("int64_t *", ts_c), val_c,
                                      n, ffi.from_buffer(out), cap, skipped)
    if written < 0:
        raise NativeError(f"cannot serialize series {key!r} (status {written})")
    if skipped[0] and nonfinite == "raise":
        floats = val_view.cast("B").cast("d")
        first = next(i for i in range(n) if not math.isfinite(floats[i]))
        stamps = ts_view.cast("B").cast("q")
        raise ValueError(f"series {key.decode()!r}: value {floats[first]!r} at {stamps[first]} "
                         f"cannot be written in line protocol")
    del out[written:]
    return bytes(out)


def _is_buffer(obj) -> bool:
    try:
        memoryview(obj)
    except TypeError:
        return False
    return True


def _serialize_strings(key: bytes, timestamps, values: Sequence[str]) -> bytes:
    if _is_buffer(timestamps):
        timestamps = memoryview(timestamps).cast("B").cast("q")
    if len(timestamps) != len(values):
        raise ValueError(f"values holds {len(values)} items, expected {len(timestamps)}")
    prefix = key.decode() + '="'
    lines = []
    for ts, text in zip(timestamps, values):
        lines.append(f'{prefix}{escape_string(text)}" {ts}\n')
    return "".join(lines).encode()


def _words_of(values, typecode: str, n: int | None, what: str, ctype: str = "uint64_t[]"):
    """C view of 8-byte items (n of them, when given): a buffer as it is, anything else through
    array()."""
    if not (isinstance(values, array.array) or _is_buffer(values)):
        values = array.array(typecode, values)
    c = ffi.from_buffer(ctype, values)
    if isinstance(values, array.array) and values.itemsize != 8 or n is not None and len(c) != n:
        raise ValueError(f"{what} must hold {n} items of 8 bytes")
    return c


def serialize_bodies(series: Sequence[tuple[str | bytes, int, Any, Any]],
                     limit: int) -> tuple[list[tuple[bytes, int, list[int] | None]], int]:
    """Line protocol for every point of several series, in order, cut into bodies of at most
    ``limit`` bytes at line ends (a single longer line is a body of its own), in one C call.

    ``series`` holds (series key, type, timestamps, values) as :func:`serialize_series` takes
    them (booleans also as bytes of 0/1, strings as a sequence of str). Returns each body as
    (bytes, points, line ends) and how many NaN and infinite values were left out. Line ends
    (offsets past each line in the body) are given only when a string value holds a line feed,
    which does not end its line; else None: every newline ends a line.
    """
    count = len(series)
    cs = ffi.new("gw_lp_series[]", count)
    keep = []  # the buffers the C structs point into
    points = 0
    for i, (key, type_, timestamps, values) in enumerate(series):
        k = key.encode() if isinstance(key, str) else bytes(key)
        ts = _words_of(timestamps, "q", None, f"series {key!r}: timestamps", "int64_t[]")
        n = len(ts)
        c = cs[i]
        c.key, c.key_len, c.type, c.n, c.ts = ffi.from_buffer(k), len(k), type_, n, ts
        if type_ == STRING:
            if len(values) != n:
                raise ValueError(f"series {k!r}: {len(values)} values for {n} timestamps")
            encoded = [v.encode("utf-8", "surrogateescape") for v in values]
            ends = array.array("I", itertools.accumulate(map(len, encoded)))
            text = b"".join(encoded)
            c.strings, c.string_ends = ffi.from_buffer(text), ffi.from_buffer("uint32_t[]", ends)
            keep += (k, text, ends)
        else:
            if type_ == BOOL and not (isinstance(values, array.array) and values.itemsize == 8):
                values = array.array("Q", values)  # 0/1 bytes or bools as value words
            words = _words_of(values, WORD_TYPECODES.get(type_, "Q"), n, f"series {k!r}: values")
            c.values = words
            keep += (k, words)  # a cdata from a buffer keeps the buffer alive
        keep.append(ts)
        points += n
    room = lib.gw_lp_bodies_bound(cs, count)
    if room >= 2**62:
        raise MemoryError("line protocol of these series does not fit in memory")
    out = bytearray(room)
    r = ffi.new("gw_lp_bodies *")
    body_ends = r.body_ends = ffi.new("size_t[]", max(1, points))
    body_points = r.body_points = ffi.new("uint64_t[]", max(1, points))
    line_ends = r.line_ends = ffi.new("size_t[]", max(1, points))
    written = lib.gw_lp_format_bodies(cs, count, limit, ffi.from_buffer(out), room, r)
    if written == lib.GW_EINVAL:
        key = series[r.bad_series][0]
        why = (ffi.string(lib.gw_lp_reason(r.bad_reason)).decode() if r.bad_reason
               else f"value type {series[r.bad_series][1]} or its strings not accepted")
        raise ValueError(f"series key {key!r} cannot be written as line protocol: {why}")
    if written < 0:
        raise NativeError(f"cannot serialize {count} series (status {written})")
    view = memoryview(out)
    ends_all = ffi.unpack(line_ends, r.lines) if r.newline_in_string else None
    bodies, start, line = [], 0, 0
    for end, n in zip(ffi.unpack(body_ends, r.bodies), ffi.unpack(body_points, r.bodies)):
        ends = None
        if ends_all is not None:
            ends = [e - start for e in ends_all[line:line + n]]
        bodies.append((bytes(view[start:end]), n, ends))
        start, line = end, line + n
    return bodies, r.skipped


def count_nonfinite(values) -> int:
    """How many of the float64 values are NaN or infinite (the points export must skip)."""
    view, _ = _words(values, "d", "values")
    return sum(1 for v in view.cast("B").cast("d") if not math.isfinite(v))


# ---- parsing ----------------------------------------------------------------------------

@dataclass(slots=True)
class ParseResult:
    """What :func:`parse` found: the points of every good line, and one error per bad line."""

    batch: "Batch"
    errors: list[LineProtocolError] = dc_field(default_factory=list)
    lines: int = 0        # lines holding data, good or bad (blank lines and comments excluded)
    points: int = 0       # points appended to the batch (one per field of each good line)
    bad_lines: int = 0    # every rejected line, also those beyond the errors kept


_REASONS = [ffi.string(lib.gw_lp_reason(r)).decode() for r in range(lib.GW_LP_E_LAST + 1)]


def _new_batch() -> Batch:
    return Batch()


def parse(data: bytes | bytearray | memoryview | str, *, precision: str = "ns",
          default_time_ns: int | None = None, batch: "Batch | None" = None,
          max_errors: int = MAX_ERRORS_KEPT) -> ParseResult:
    """Parses line protocol into ``batch`` (a new one when None).

    Lines without a timestamp get ``default_time_ns`` (the current time when None) truncated
    to ``precision``, as InfluxDB does. Bad lines do not stop the parse: each is counted and the
    first ``max_errors`` come back as :class:`LineProtocolError` (``.line``, ``.column``).
    Raises ValueError for an unknown precision and MemoryError when the batch cannot grow.
    """
    try:
        unit = PRECISIONS[precision]
    except KeyError:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}") from None
    if default_time_ns is None:
        default_time_ns = time.time_ns()  # the parser truncates it
    elif not MIN_TIME_NS <= default_time_ns <= MAX_TIME_NS:
        raise ValueError(f"default_time_ns out of range: {default_time_ns}")
    if max_errors < 0:
        raise ValueError(f"max_errors must be >= 0, got {max_errors}")
    if isinstance(data, str):
        data = data.encode()
    elif type(data) is not bytes:
        data = memoryview(data).cast("B")  # from_buffer and len() then count bytes
    if batch is None:
        batch = _new_batch()
    errors = ffi.new("gw_lp_error[]", max_errors) if max_errors else ffi.NULL
    stats = ffi.new("gw_lp_stats *")
    rc = lib.gw_lp_parse(batch.c_pointer, ffi.from_buffer(data), len(data), unit,
                         default_time_ns, errors, max_errors, stats)
    if rc == lib.GW_ENOMEM:
        raise MemoryError("line protocol batch cannot grow (out of memory or over 4 GiB)")
    if rc != lib.GW_OK:
        raise NativeError(f"line protocol parser failed (status {rc})")
    found = []
    for k in range(stats.n_errors):
        e = errors[k]
        found.append(LineProtocolError(f"line {e.line}, column {e.column}: {_REASONS[e.reason]}",
                                       e.line, e.column))
    return ParseResult(batch, found, stats.lines, stats.points, stats.bad_lines)


__all__ = [
    "PRECISIONS", "MAX_ERRORS_KEPT", "MAX_STRING_BYTES", "ParseResult", "parse",
    "format_line", "format_value", "serialize_series", "serialize_bodies", "count_nonfinite", "series_key",
    "split_series_key", "escape_measurement", "escape_key", "escape_field_key", "escape_string",
]
