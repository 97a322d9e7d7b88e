"""Window aggregation for the query engine.

:class:`WindowFold` aggregates a series read as time-ordered batches in the C kernels
(:mod:`gateway.aggregate`), a batch of many blocks per call; a window cut by a batch boundary
is merged from its two partial aggregates (count, sums, Welford's m2, the selected points), so
memory stays one batch per series. ``median`` is not mergeable: the points of the window at a
boundary are carried into the next batch instead. It is the general path: where a series'
blocks follow each other in time, the store folds them in C without Python per batch
(:class:`gateway.aggregate.BlockFold`) and :func:`folded_values` reads the result.

:func:`aggregate_values` is the same arithmetic on a plain list of rows, for tables that the
query has already reshaped (after group(), map(), ...).
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
from itertools import repeat
from operator import sub
from typing import Any

from gateway.datamodel import BOOL, FLOAT, INT, STRING, UINT
from gateway.aggregate import (EXACT_MEAN, EXACT_SELECTOR, FOLD_ISUM, FOLD_M2, FOLD_MINMAX,
                               FoldedWindows, FoldSpec, window_aggregate, window_means,
                               window_quantile)
from gateway.query.errors import fail
from gateway.query.planner import SELECTORS
from gateway.query.values import Time

_U64 = (1 << 64) - 1
#: Flux's name of each value type of the data model.
FLUX_TYPES = {FLOAT: "float", INT: "int", UINT: "uint", BOOL: "bool", STRING: "string"}
_NUMERIC_ONLY = ("mean", "sum", "median", "spread", "stddev")


def window_start(t: int, every: int, offset: int) -> int:
    return (t - offset) // every * every + offset


def is_selector(fn: str, method: str = "estimate_tdigest") -> bool:
    return fn in SELECTORS or (fn == "median" and method == "exact_selector")


def result_type(fn: str, method: str, value_type: str) -> str:
    if fn == "count":
        return "int"
    if fn in ("mean", "stddev") or (fn == "median" and method != "exact_selector"):
        return "float"
    if fn in ("sum", "spread") and value_type == "bool":
        return "int"
    return value_type


def type_refusal(fn: str, value_type: str) -> str | None:
    """Why ``fn()`` does not apply to values of ``value_type`` (the end of an error message),
    or None where it does."""
    if value_type == "string" and fn not in ("count", "first", "last"):
        return "does not apply to string values"
    if value_type == "bool" and fn in _NUMERIC_ONLY:
        return "does not apply to boolean values"
    return None


@dataclass(slots=True)
class Partial:
    """The aggregate of one window so far."""

    start: int
    count: int
    sum: float
    isum: int
    m2: float
    min: float
    max: float
    min_point: tuple   # (time, exact value)
    max_point: tuple
    first_point: tuple
    last_point: tuple

    def merge(self, later: "Partial") -> None:
        n = self.count + later.count
        delta = later.sum / later.count - self.sum / self.count
        self.m2 += later.m2 + delta * delta * self.count * later.count / n
        self.count = n
        self.sum += later.sum
        self.isum += later.isum
        if later.min < self.min:
            self.min, self.min_point = later.min, later.min_point
        if later.max > self.max:
            self.max, self.max_point = later.max, later.max_point
        self.last_point = later.last_point


def _exact(value_type: str):
    if value_type == "bool":
        return bool
    return lambda v: v


class WindowFold:
    """Feed time-ordered batches of one series with :meth:`add`, then :meth:`finish`; gives
    {window start: (value, time of the selected point or None)} for every non-empty window."""

    def __init__(self, fn: str, every: int, offset: int, value_type: str, method: str,
                 mode: str = "sample") -> None:
        self.fn, self.every, self.offset = fn, every, offset % every
        self.value_type, self.method, self.mode = value_type, method, mode
        self.exact = _exact(value_type)
        self.out: dict[int, tuple[Any, Any]] = {}
        self.pending: Partial | None = None       # the last window, maybe continued
        self.carry: tuple | None = None           # median: points of the last window

    def add(self, ts: array, values) -> None:
        if not len(ts):
            return
        if self.fn == "median":
            self._add_median(ts, values)
            return
        if self.value_type == "string":
            cols = window_aggregate(ts, array("d", bytes(8 * len(ts))), self.every, self.offset)
        else:
            cols = window_aggregate(ts, values, self.every, self.offset)
        exact = self.exact
        for k in range(len(cols)):
            mi, ma, fi, la = cols.min_at[k], cols.max_at[k], cols.first_at[k], cols.last_at[k]
            part = Partial(cols.start[k], cols.count[k], cols.sum[k], cols.isum[k], cols.m2[k],
                           cols.min[k], cols.max[k], (ts[mi], exact(values[mi])),
                           (ts[ma], exact(values[ma])), (ts[fi], exact(values[fi])),
                           (ts[la], exact(values[la])))
            if self.pending is not None:
                if self.pending.start == part.start:
                    self.pending.merge(part)
                    continue
                self._emit(self.pending)
            self.pending = part

    def _emit(self, w: Partial) -> None:
        fn = self.fn
        if fn == "count":
            self.out[w.start] = (w.count, None)
        elif fn == "mean":
            self.out[w.start] = (w.sum / w.count, None)
        elif fn == "sum":
            if self.value_type == "int":
                v = w.isum & _U64
                self.out[w.start] = (v - (1 << 64) if v >= 1 << 63 else v, None)
            elif self.value_type == "uint":
                self.out[w.start] = (w.isum & _U64, None)
            else:
                self.out[w.start] = (w.sum, None)
        elif fn == "stddev":
            n = w.count if self.mode == "population" else w.count - 1
            self.out[w.start] = (math.sqrt(max(w.m2, 0.0) / n) if n > 0 else None, None)
        elif fn == "spread":
            self.out[w.start] = (w.max_point[1] - w.min_point[1], None)
        else:
            t, v = {"min": w.min_point, "max": w.max_point, "first": w.first_point,
                    "last": w.last_point}[fn]
            self.out[w.start] = (v, t)

    def _add_median(self, ts: array, values) -> None:
        if self.carry is not None:
            cts, cvs = self.carry
            ts, values = cts + ts, cvs + values
        # Everything before the last window is complete.
        last_start = window_start(ts[-1], self.every, self.offset)
        cut = _bisect(ts, last_start)
        self.carry = (ts[cut:], values[cut:])
        if cut:
            self._median(ts[:cut], values[:cut])

    def _median(self, ts, values) -> None:
        method = EXACT_SELECTOR if self.method == "exact_selector" else EXACT_MEAN
        q, at = window_quantile(ts, values, self.every, self.offset, 0.5, method)
        starts = window_aggregate(ts, values, self.every, self.offset).start
        for k in range(len(q)):
            if method == EXACT_SELECTOR:
                self.out[starts[k]] = (self.exact(values[at[k]]), ts[at[k]])
            else:
                self.out[starts[k]] = (q[k], None)

    def finish(self) -> dict[int, tuple[Any, Any]]:
        if self.pending is not None:
            self._emit(self.pending)
            self.pending = None
        if self.carry is not None:
            self._median(*self.carry)
            self.carry = None
        return self.out


def _exact_column(words: array, value_type: str):
    """The exact values of 64-bit value words (:class:`FoldedWindows` ``*_v`` columns): an
    array for numbers, a list for booleans."""
    if value_type == "float":
        return array("d", words.tobytes())
    if value_type == "int":
        return array("q", words.tobytes())
    if value_type == "bool":
        return [bool(w) for w in words]
    return words

def fold_spec(fn: str, every: int, offset: int) -> FoldSpec:
    """What the C fold computes and gives back for ``fn`` (any but median), as
    :func:`folded_values` reads it."""
    if fn in ("min", "max"):
        return FoldSpec(every, offset % every, FOLD_MINMAX, (f"{fn}_ts", f"{fn}_v"))
    if fn == "spread":
        return FoldSpec(every, offset % every, FOLD_MINMAX, ("min_v", "max_v"))
    if fn in ("first", "last"):
        return FoldSpec(every, offset % every, 0, (f"{fn}_ts", f"{fn}_v"))
    if fn == "stddev":
        return FoldSpec(every, offset % every, FOLD_M2, ("count", "m2"))
    if fn == "sum":
        return FoldSpec(every, offset % every, FOLD_ISUM, ("sum", "isum"))
    return FoldSpec(every, offset % every, 0, ("count", "sum"))   # count, mean


def folded_columns(cols: FoldedWindows, fn: str, value_type: str,
                   mode: str = "sample") -> tuple[Any, array | None]:
    """The C fold's windows (any fn but median) as columns, in the order of ``cols.start``:
    (values, times of the selected points or None). Values are arrays where no value can be
    null (a window of the fold holds at least one point), else lists."""
    if fn == "count":
        return cols.count, None
    if fn == "mean":
        return window_means(cols.sum, cols.count), None
    if fn == "sum":
        if value_type == "int":
            return cols.isum, None
        if value_type == "uint":
            return array("Q", cols.isum.tobytes()), None   # exact wrapping sums
        return cols.sum, None
    if fn == "stddev":
        less = 0 if mode == "population" else 1
        return [math.sqrt(max(m2, 0.0) / (c - less)) if c > less else None
                for m2, c in zip(cols.m2, cols.count)], None
    if fn == "spread":
        spreads = map(sub, _exact_column(cols.max_v, value_type),
                      _exact_column(cols.min_v, value_type))
        return (array("d", spreads) if value_type == "float" else list(spreads)), None
    if fn not in ("min", "max", "first", "last"):
        raise ValueError(f"the fold does not give {fn}()")
    return _exact_column(getattr(cols, f"{fn}_v"), value_type), getattr(cols, f"{fn}_ts")


def folded_values(cols: FoldedWindows, fn: str, value_type: str,
                  mode: str = "sample") -> dict[int, tuple[Any, Any]]:
    """What :meth:`WindowFold.finish` gives, from the C fold's windows (any fn but median):
    {window start: (value, time of the selected point or None)}."""
    values, times = folded_columns(cols, fn, value_type, mode)
    return dict(zip(cols.start, zip(values, repeat(None) if times is None else times)))


def _bisect(ts: array, value: int) -> int:
    lo, hi = 0, len(ts)
    while lo < hi:
        mid = (lo + hi) // 2
        if ts[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


def aggregate_values(fn: str, rows: list[tuple[int | None, Any]], method: str = "estimate_tdigest",
                     mode: str = "sample", pos=None) -> tuple[Any, int | None, int | None] | None:
    """(value, time, row index of the selected row) of ``fn`` over rows (time, value) in table
    order, nulls and NaN skipped; None when nothing is left (selectors give no row then)."""
    good = [(i, t, v) for i, (t, v) in enumerate(rows)
            if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if fn == "count":
        return len(good), None, None
    if not good:
        return None
    if any(isinstance(v, str) for _, _, v in good) and fn not in ("first", "last"):
        fail(f"{fn}() does not apply to string values", pos)
    if fn == "first":
        i, t, v = good[0]
        return v, t, i
    if fn == "last":
        i, t, v = good[-1]
        return v, t, i
    if fn in ("min", "max"):
        best = good[0]
        for g in good[1:]:
            if (g[2] < best[2]) if fn == "min" else (g[2] > best[2]):
                best = g
        return best[2], best[1], best[0]
    nums = [float(v) for _, _, v in good]
    if fn == "sum":
        total = sum(v for _, _, v in good)
        return total, None, None
    if fn == "mean":
        return math.fsum(nums) / len(nums), None, None
    if fn == "spread":
        vs = [v for _, _, v in good]
        return max(vs) - min(vs), None, None
    if fn == "stddev":
        n = len(nums) if mode == "population" else len(nums) - 1
        if n <= 0:
            return None
        mean = math.fsum(nums) / len(nums)
        return math.sqrt(math.fsum((x - mean) ** 2 for x in nums) / n), None, None
    if fn == "median":
        order = sorted(range(len(good)), key=lambda k: (nums[k], k))
        m = len(order)
        if method == "exact_selector":
            k = order[max(0, math.ceil(0.5 * m) - 1)]
            i, t, v = good[k]
            return v, t, i
        pos_ = 0.5 * (m - 1)
        lo, hi = math.floor(pos_), math.ceil(pos_)
        a, b = nums[order[lo]], nums[order[hi]]
        return (a if lo == hi else a + (pos_ - lo) * (b - a)), None, None
    fail(f"unknown aggregate {fn}()", pos)
