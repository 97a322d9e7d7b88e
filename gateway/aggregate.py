"""Fixed-window aggregation of decoded columns (the C kernel in ``native/src/aggregate.c``).

This module is the only door to the aggregation kernel. ``window_aggregate`` takes the
columns :func:`gateway.codec.decode` returns (or any buffers of the same formats) and yields
one row per non-empty window, as columns, without per-point Python work.

>>> from array import array
>>> cols = window_aggregate(array("q", [0, 10, 65]), array("d", [1.0, 3.0, 5.0]), 60)
>>> list(cols.start), list(cols.count), list(cols.mean)
([0, 60], [2, 1], [2.0, 5.0])
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass

from gateway._native import ffi, lib
from gateway.datamodel import BOOL, FLOAT, INT, UINT
from gateway.codec import as_column

__all__ = ["window_aggregate", "WindowColumns"]

_I64 = ffi.typeof("int64_t[]")
_U64 = ffi.typeof("uint64_t[]")
_F64 = ffi.typeof("double[]")
_U8 = ffi.typeof("uint8_t[]")
_TYPE_OF_FORMAT = {("d", 8): FLOAT, ("q", 8): INT, ("l", 8): INT, ("Q", 8): UINT, ("L", 8): UINT,
                   ("?", 1): BOOL, ("B", 1): BOOL}


@dataclass(frozen=True, slots=True)
class WindowColumns:
    """One entry per non-empty window, in time order. Aggregates are computed in double
    precision; first/last are the values with the earliest/latest timestamp."""

    start: array   # 'q': window start (ns), offset + k * every
    count: array   # 'Q'
    sum: array     # 'd'
    mean: array
    min: array
    max: array
    first: array
    last: array

    def __len__(self) -> int:
        return len(self.start)


def window_aggregate(timestamps, values, every_ns: int, offset_ns: int = 0) -> WindowColumns:
    """count/sum/mean/min/max/first/last of ``values`` per window of ``every_ns`` nanoseconds,
    windows aligned to the Unix epoch shifted by ``offset_ns``.

    ``timestamps``: signed 64-bit ns in any order (sorted input takes one pass). ``values``:
    float64, int64, uint64 or one-byte booleans. NaN values are skipped.
    """
    ts = as_column(timestamps, "timestamps")
    if (ts.format.lstrip("@=<"), ts.itemsize) not in {("q", 8), ("l", 8)}:
        raise TypeError(f"timestamps must be signed 64-bit integers (ns), got format {ts.format!r}")
    vals = as_column(values, "values")
    code = _TYPE_OF_FORMAT.get((vals.format.lstrip("@=<"), vals.itemsize))
    if code is None:
        raise TypeError(f"values must be float64, int64, uint64 or bool, got format {vals.format!r}")
    n = len(ts)
    if len(vals) != n:
        raise ValueError(f"{n} timestamps but {len(vals)} values")
    every, offset = int(every_ns), int(offset_ns)
    if not 0 < every < 1 << 63:
        raise ValueError(f"every_ns must be a positive 64-bit number of nanoseconds, got {every_ns!r}")
    offset %= every
    if code == BOOL:
        words = ffi.new("uint64_t[]", n)
        lib.gw_block_bools_widen(ffi.from_buffer(_U8, vals), words, n)
    else:
        words = ffi.from_buffer(_U64, vals)
    cols = [array("q", [0]) * n, array("Q", [0]) * n] + [array("d", [0.0]) * n for _ in range(6)]
    got = lib.gw_aggregate_windows(
        code, ffi.from_buffer(_I64, ts), words, n, every, offset,
        ffi.from_buffer(_I64, cols[0]), ffi.from_buffer(_U64, cols[1]),
        *(ffi.from_buffer(_F64, c) for c in cols[2:]), n)
    if got == lib.GW_ENOMEM:
        raise MemoryError("window aggregation ran out of memory")
    if got < 0:
        raise ValueError(f"window aggregation rejected its input (code {got})")
    for c in cols:
        del c[got:]
    return WindowColumns(*cols)
