"""Fixed-window aggregation of decoded columns (the C kernels in ``native/src/aggregate.c``
and ``native/src/fold.c``).

This module is the only door to the aggregation kernels. ``window_aggregate`` takes the
columns :func:`gateway.codec.decode` returns (or any buffers of the same formats) and yields
one row per non-empty window, as columns, without per-point Python work; ``window_quantile``
gives one quantile per non-empty window of the same input. :class:`BlockFold` aggregates a
series' windows straight from its ring blocks: the query engine's fast path;
:class:`BatchFold` does it for a batch of series with plain data in one call, their windows
in one set of columns (:class:`FoldedMany` joins a trip's).

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

__all__ = ["window_aggregate", "window_quantile", "WindowColumns", "EXACT_MEAN", "EXACT_SELECTOR",
           "BlockFold", "BatchFold", "FoldSpec", "FoldedWindows", "FoldedMany", "UnorderedPoints",
           "window_times", "window_means"]

_I64 = ffi.typeof("int64_t[]")
_U64 = ffi.typeof("uint64_t[]")
_F64 = ffi.typeof("double[]")
_U32 = ffi.typeof("uint32_t[]")
_U8 = ffi.typeof("uint8_t[]")
_TYPE_OF_FORMAT = {("d", 8): FLOAT, ("q", 8): INT, ("l", 8): INT, ("Q", 8): UINT, ("L", 8): UINT,
                   ("?", 1): BOOL, ("B", 1): BOOL}
_WINDOW_FIELDS = ("start", "count", "sum", "isum", "mean", "m2", "min", "max", "first", "last",
                  "min_at", "max_at", "first_at", "last_at")
_WINDOW_TYPECODES = "qQdqdddddd" + "IIII"
#: Quantile methods of :func:`window_quantile` (Flux's names).
EXACT_MEAN, EXACT_SELECTOR = 0, 1


@dataclass(frozen=True, slots=True)
class WindowColumns:
    """One entry per non-empty window, in time order. Aggregates are computed in double
    precision; first/last are the values with the earliest/latest timestamp. ``isum`` is the
    exact sum of integer input (wrapping at 64 bits; unsigned input as its bit pattern); ``m2``
    the sum of squared deviations from the mean (variance = m2 / (count - 1)). The ``*_at``
    columns are input indices of the selected points."""

    start: array   # 'q': window start (ns), offset + k * every
    count: array   # 'Q'
    sum: array     # 'd'
    isum: array    # 'q'
    mean: array    # 'd'
    m2: array
    min: array
    max: array
    first: array
    last: array
    min_at: array  # 'I'
    max_at: array
    first_at: array
    last_at: array

    def __len__(self) -> int:
        return len(self.start)


def _inputs(timestamps, values, every_ns, offset_ns):
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
    if n >= 1 << 32:
        raise ValueError(f"at most 2**32 - 1 points per call, got {n}")
    every, offset = int(every_ns), int(offset_ns)
    if not 0 < every < 1 << 63:
        raise ValueError(f"every_ns must be a positive 64-bit number of nanoseconds, got {every_ns!r}")
    if code == BOOL:
        words = ffi.new("uint64_t[]", n)
        if n:
            lib.gw_block_bools_widen(ffi.from_buffer(_U8, vals), words, n)
    else:
        words = ffi.from_buffer(_U64, vals)
    return code, ffi.from_buffer(_I64, ts), words, n, every, offset % every


def _capacity(timestamps, n: int, every: int) -> int:
    """Room for the windows: exact bound for sorted input, else n (the kernel refuses to
    write past it, and the caller retries with n)."""
    if n == 0:
        return 0
    first, last = timestamps[0], timestamps[n - 1]
    if last < first:
        return n
    return min(n, (last - first) // every + 2)


def _check(got: int) -> int:
    if got == lib.GW_ENOMEM:
        raise MemoryError("window aggregation ran out of memory")
    if got < 0:
        raise ValueError(f"window aggregation rejected its input (code {got})")
    return got


def window_aggregate(timestamps, values, every_ns: int, offset_ns: int = 0) -> WindowColumns:
    """count/sum/mean/m2/min/max/first/last of ``values`` per window of ``every_ns``
    nanoseconds, windows aligned to the Unix epoch shifted by ``offset_ns``.

    ``timestamps``: signed 64-bit ns in any order (sorted input takes one pass). ``values``:
    float64, int64, uint64 or one-byte booleans. NaN values are skipped.
    """
    code, ts, words, n, every, offset = _inputs(timestamps, values, every_ns, offset_ns)
    cap = _capacity(timestamps, n, every)
    while True:
        cols = [array(t, bytes(array(t).itemsize * cap)) for t in _WINDOW_TYPECODES]
        out = ffi.new("gw_windows *")
        keep = [ffi.from_buffer(c) for c in cols]  # alive until the call returns
        for name, buf in zip(_WINDOW_FIELDS, keep):
            setattr(out, name, ffi.cast(ffi.typeof(getattr(out, name)), buf))
        got = lib.gw_aggregate_windows(code, ts, words, n, every, offset, out, cap)
        if got != lib.GW_EINVAL or cap == n:
            break
        cap = n   # unsorted input with more windows than the sorted bound
    _check(got)
    del keep, buf, out   # the views must go before the arrays can shrink
    for c in cols:
        del c[got:]
    return WindowColumns(*cols)


def window_quantile(timestamps, values, every_ns: int, offset_ns: int = 0, q: float = 0.5,
                    method: int = EXACT_MEAN) -> tuple[array, array]:
    """(quantile per non-empty window as array('d'), index of the selected point as array('I'))
    for the windows :func:`window_aggregate` gives on the same input. With EXACT_MEAN the index
    is that of the lower of the two points interpolated."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be between 0 and 1, got {q!r}")
    code, ts, words, n, every, offset = _inputs(timestamps, values, every_ns, offset_ns)
    cap = _capacity(timestamps, n, every)
    while True:
        value, at = array("d", bytes(8 * cap)), array("I", bytes(4 * cap))
        got = lib.gw_window_quantile(code, ts, words, n, every, offset, float(q), int(method),
                                     ffi.from_buffer(_F64, value), ffi.from_buffer(_U32, at), cap)
        if got != lib.GW_EINVAL or cap == n:
            break
        cap = n
    _check(got)
    del value[got:], at[got:]
    return value, at


class UnorderedPoints(Exception):
    """The points given to a :class:`BlockFold` do not follow each other in time (blocks that
    overlap, a timestamp written twice): the caller merges them on the general path."""


#: What a :class:`BlockFold` computes beyond count, sum, first and last (gw_fold.h).
FOLD_MINMAX, FOLD_M2, FOLD_ISUM = (lib.GW_FOLD_WANT_MINMAX, lib.GW_FOLD_WANT_M2,
                                   lib.GW_FOLD_WANT_ISUM)
#: What became of each block given to :meth:`BlockFold.blocks` (gw_fold.h).
FOLD_OK, FOLD_STALE, FOLD_DAMAGED, FOLD_BAD_BLOCK = (lib.GW_FOLD_OK, lib.GW_FOLD_STALE,
                                                     lib.GW_FOLD_DAMAGED, lib.GW_FOLD_BAD_BLOCK)
#: Words (int64) of a block in :meth:`BlockFold.blocks`' refs.
REF_WORDS = 5
_FOLD_FIELDS = ("start", "count", "sum", "isum", "m2", "min", "max", "min_ts", "max_ts",
                "first_ts", "last_ts", "min_v", "max_v", "first_v", "last_v")
_FOLD_TYPECODES = "qQdqddd" + "qqqq" + "QQQQ"


@dataclass(frozen=True, slots=True)
class FoldedWindows:
    """The non-empty windows of a :class:`BlockFold`, in time order, as columns: the
    accumulators of :class:`WindowColumns`, and for each selected point (min, max, first,
    last) its time (``*_ts``) and exact 64-bit value word (``*_v``: float bits, int, uint or
    0/1)."""

    start: array
    count: array
    sum: array
    isum: array
    m2: array
    min: array
    max: array
    min_ts: array
    max_ts: array
    first_ts: array
    last_ts: array
    min_v: array
    max_v: array
    first_v: array
    last_v: array

    def __len__(self) -> int:
        return len(self.start)

    def rows(self, a: int, z: int) -> "FoldedWindows":
        """Windows a to z as columns of their own."""
        return FoldedWindows(*(getattr(self, name)[a:z] for name in _FOLD_FIELDS))


@dataclass(frozen=True, slots=True)
class FoldedMany:
    """The windows of many series folded in one trip, in one set of columns (only those the
    :class:`FoldSpec` asks for, and ``start``), the series' windows one after another in no
    set order: series k's are rows ``first[k]`` to ``first[k] + count[k]`` of ``windows``;
    ``first[k]`` is None for a series that needs the general path. ``points[k]``: the points
    folded; ``blocks[k]``: the blocks listed."""

    windows: FoldedWindows
    points: list[int]
    first: list[int | None]
    count: list[int]
    blocks: list[int]

    def of(self, k: int) -> FoldedWindows | None:
        """Series k's windows as columns of their own (None: the general path)."""
        a = self.first[k]
        return None if a is None else self.windows.rows(a, a + self.count[k])

    @classmethod
    def joined(cls, parts: list[tuple[int, FoldedWindows | None, int, int, int]]
               ) -> "FoldedMany":
        """Of each series (points, windows, its first window there, its windows, blocks),
        the windows being a batch's (shared by several series) or the series' own (None: the
        general path): the batches' columns joined once each."""
        chunks: dict[int, tuple[FoldedWindows, int]] = {}   # by id: (columns, first row)
        rows = 0
        for _, cols, _, _, _ in parts:
            if cols is not None and id(cols) not in chunks:
                chunks[id(cols)] = (cols, rows)
                rows += len(cols)
        if len(chunks) == 1:
            (windows, _), = chunks.values()
        else:
            joined = [array(code) for code in _FOLD_TYPECODES]
            for cols, _ in chunks.values():
                for col, name in zip(joined, _FOLD_FIELDS):
                    part = getattr(cols, name)
                    if part:
                        col.extend(part)
            windows = FoldedWindows(*joined)
        first = [None if cols is None else chunks[id(cols)][1] + a for _, cols, a, _, _ in parts]
        return cls(windows, [p[0] for p in parts], first, [p[3] for p in parts],
                   [p[4] for p in parts])


@dataclass(frozen=True, slots=True)
class FoldSpec:
    """What a :class:`BlockFold` computes: windows of ``every`` ns shifted by ``offset``,
    the FOLD_* columns ``want`` asks beyond count, sum, first and last, and the
    :class:`FoldedWindows` ``columns`` its caller reads (the others come back empty, so that
    a month of windows of many series holds only what the aggregate needs)."""

    every: int
    offset: int
    want: int
    columns: tuple[str, ...]


class BlockFold:
    """Window aggregation of one series read straight from its ring blocks in C: give it the
    blocks (:meth:`blocks`, many per call) and loose points (:meth:`columns`) in time order,
    then :meth:`finish`. Only windows are kept; a block's points live in a scratch buffer
    that the next block reuses."""

    def __init__(self, type_code: int, spec: FoldSpec, lo: int, hi: int,
                 max_windows: int) -> None:
        if type_code not in (FLOAT, INT, UINT, BOOL):
            raise ValueError(f"a fold takes numeric or boolean values, not type {type_code}")
        ptr = lib.gw_fold_new(type_code, spec.want, int(spec.every), int(spec.offset), int(lo),
                              int(hi), min(int(max_windows), (1 << 32) - 1))
        if ptr == ffi.NULL:
            raise ValueError(f"cannot fold windows of {spec.every} ns over [{lo}, {hi})")
        self._layout = _layout(spec)
        self._ptr = ffi.gc(ptr, lib.gw_fold_free)
        self.type = type_code

    def _check(self, got: int) -> int:
        if got == lib.GW_FOLD_UNORDERED:
            raise UnorderedPoints("points out of time order")
        if got == lib.GW_ENOMEM:
            raise MemoryError("the fold has too many windows or ran out of memory")
        if got < 0:
            raise OSError(f"reading blocks for a fold failed (code {got})")
        return got

    def blocks(self, ring_ptr, refs: array, first: int = 0) -> tuple[int, int, array]:
        """Folds the blocks ``refs[first:]`` (array('q') of :data:`REF_WORDS` words a block:
        seq, offset, length, min_ts, max_ts; in order of min_ts) of the ring (a ``gw_ring *``)
        up to the first that overlaps the next; (points folded, blocks taken, status of each
        block taken: FOLD_*)."""
        n = len(refs) // REF_WORDS - first
        status = array("i", bytes(4 * max(n, 0)))
        if n <= 0:
            return 0, 0, status
        done = ffi.new("uint32_t *")
        refs_c = ffi.cast("gw_fold_ref *", ffi.from_buffer(refs)) + first
        got = self._check(lib.gw_fold_blocks(self._ptr, ring_ptr, refs_c, n,
                                             ffi.from_buffer("int32_t[]", status), done))
        del status[done[0]:]
        return got, done[0], status

    def columns(self, timestamps: array, words) -> int:
        """Folds points given as int64 times and 64-bit value words (booleans widened)."""
        n = len(timestamps)
        if not n:
            return 0
        if len(words) != n:
            raise ValueError(f"{n} timestamps but {len(words)} values")
        return self._check(lib.gw_fold_columns(self._ptr, ffi.from_buffer(_I64, timestamps),
                                               ffi.from_buffer(_U64, words), n))

    @staticmethod
    def last_block_error() -> str:
        """Why the last block this thread could not decode was refused."""
        return ffi.string(lib.gw_block_last_error()).decode("ascii", "replace")

    def finish(self) -> FoldedWindows:
        out = ffi.new("gw_fold_windows *")
        lib.gw_fold_finish(self._ptr, out)
        return _copied(out, self._layout)


def _layout(spec: FoldSpec) -> tuple[tuple[str, str, bool], ...]:
    """(column, typecode, kept) of each :class:`FoldedWindows` column: kept are ``start``
    and those ``spec`` asks for."""
    kept = frozenset(spec.columns) | {"start"}
    return tuple((name, code, name in kept) for name, code in zip(_FOLD_FIELDS, _FOLD_TYPECODES))


def _copied(out, layout) -> FoldedWindows:
    """The kept columns of a ``gw_fold_windows`` copied into arrays (the others empty)."""
    size = 8 * out.n
    cols = []
    for name, code, kept in layout:
        col = array(code)
        if kept and size:
            col.frombytes(ffi.buffer(getattr(out, name), size))
        cols.append(col)
    return FoldedWindows(*cols)


class BatchFold:
    """Window aggregation of a batch of series in one C call (``gw_fold_many``): each series'
    ring blocks and then its head points, folded as :class:`BlockFold` folds them when they
    are plain (no damaged or overlapping block, points in time order); the others are left
    to the caller's per-series path. One fold, reused from series to series and batch to
    batch; one thread at a time uses it."""

    def __init__(self, spec: FoldSpec, lo: int, hi: int, max_windows: int) -> None:
        ptr = lib.gw_fold_new(FLOAT, spec.want, int(spec.every), int(spec.offset), int(lo),
                              int(hi), min(int(max_windows), (1 << 32) - 1))
        if ptr == ffi.NULL:
            raise ValueError(f"cannot fold windows of {spec.every} ns over [{lo}, {hi})")
        self._layout = _layout(spec)
        self._columns = sum(1 << i for i, (_, _, kept) in enumerate(self._layout) if kept)
        self._ptr = ffi.gc(ptr, lib.gw_fold_free)

    def fold(self, ring_ptr, types: bytes, refs: array, refs_at: array, head_ts: array,
             head_words: array, head_at: array) -> tuple[array, array, FoldedWindows] | None:
        """Folds series k (of ``len(types)``, value types) from its blocks ``refs[REF_WORDS *
        refs_at[k]:REF_WORDS * refs_at[k + 1]]`` (as :meth:`BlockFold.blocks` takes them)
        and then its head points ``head_ts/head_words[head_at[k]:head_at[k + 1]]`` (as
        :meth:`BlockFold.columns` takes them; ``*_at``: array('I'), one more entry than
        series). (points of each series, array('q'): < 0 where the series needs the
        per-series path; its first window, array('I'), one more entry; the windows), or
        None when memory ran out (every series then takes the per-series path)."""
        n = len(types)
        points = array("q", bytes(8 * n))
        windows_at = array("I", bytes(4 * (n + 1)))
        out = ffi.new("gw_fold_windows *")
        got = lib.gw_fold_many(
            self._ptr, ring_ptr, n, ffi.from_buffer(_U8, types),
            ffi.cast("gw_fold_ref *", ffi.from_buffer(refs)),
            ffi.from_buffer(_U32, refs_at), ffi.from_buffer(_I64, head_ts),
            ffi.from_buffer(_U64, head_words), ffi.from_buffer(_U32, head_at), self._columns,
            ffi.from_buffer(_I64, points), ffi.from_buffer(_U32, windows_at), out)
        if got < 0:
            return None
        return points, windows_at, _copied(out, self._layout)


def window_times(starts: array, shift: int, lo: int, hi: int) -> array:
    """array('q') of each window start + shift, clamped to [lo, hi], in C (the time column
    of an aggregateWindow table: ``_start`` times are the starts, ``_stop`` times the starts
    + every; only the first and last window can be cut by the range)."""
    n = len(starts)
    out = array("q", bytes(8 * n))
    if n:
        lib.gw_times_shift_clamp(ffi.from_buffer(_I64, starts), int(shift), int(lo), int(hi),
                                 ffi.from_buffer(_I64, out), n)
    return out


def window_means(sums: array, counts: array) -> array:
    """array('d') of sums[i] / counts[i] (non-empty windows), in C."""
    if sums.typecode != "d" or counts.typecode != "Q" or len(sums) != len(counts):
        raise ValueError("window_means takes array('d') sums and array('Q') counts of one length")
    n = len(sums)
    out = array("d", bytes(8 * n))
    if n:
        lib.gw_means(ffi.from_buffer(_F64, sums), ffi.from_buffer(_U64, counts),
                     ffi.from_buffer(_F64, out), n)
    return out
