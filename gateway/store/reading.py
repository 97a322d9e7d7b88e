"""Streaming reads: the points of a series in a time range, a batch of blocks at a time.

``Store.scan`` returns whole columns; a query over 30 days of every series cannot hold that.
:func:`stream_series` selects the series' blocks from the index (and the sealed blocks not yet
indexed) by their time bounds, so no block outside the range is read or decoded, and yields the
points in time order, one point per timestamp (the last written wins, as in ``scan``), in
batches of about :data:`BATCH_POINTS` points: memory in flight is one batch per series read.

Blocks whose time spans overlap (late or redelivered points) are merged together; blocks that
do not overlap are concatenated as they are (sealed blocks are sorted and free of duplicates).
The unsealed head takes part as the newest piece.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from array import array
from dataclasses import dataclass
from typing import Any, AsyncIterator

from gateway import codec
from gateway.errors import CorruptBlock
from gateway.store.bucket import Bucket, SeriesInfo
from gateway.store.native import OK, STALE, gather64, merge_order

log = logging.getLogger("gateway.store")

#: Points per batch handed to the caller (many blocks per C call, bounded memory).
BATCH_POINTS = 65536
_TYPECODES = {1: "d", 2: "q", 3: "Q"}
_STRING, _BOOL = 5, 4
_MIN_TS, _MAX_TS = -(1 << 63), (1 << 63) - 1
_HEAD_SEQ = 1 << 62   # the head is newer than every block


@dataclass(slots=True)
class _Piece:
    seq: int
    min_ts: int
    max_ts: int
    count: int
    offset: int = 0
    length: int = 0
    head: Any = None   # (ts, values) of the head


def _empty_values(type_: int):
    if type_ == _STRING:
        return []
    return array("B" if type_ == _BOOL else _TYPECODES[type_])


def _head_columns(type_: int, ts, raw, strings):
    if type_ == _STRING:
        return ts, strings
    if type_ == _BOOL:
        return ts, array("B", raw.tobytes()[::8])
    return ts, array(_TYPECODES[type_], raw.tobytes())


async def stream_series(store, bucket: str, info: SeriesInfo, start: int | None = None,
                        stop: int | None = None, batch_points: int | None = None,
                        ) -> AsyncIterator[tuple[array, Any]]:
    """Yields ``(timestamps, values)`` of ``info`` with start <= time < stop (ns; None =
    open), in time order across batches; never an empty batch. Values as in
    :class:`gateway.store.SeriesColumns`."""
    store._check_open()
    batch_points = batch_points or BATCH_POINTS
    b = store.bucket(bucket)
    lo = _MIN_TS if start is None else int(start)
    hi = _MAX_TS if stop is None else int(stop)
    if lo >= hi:
        return
    loop = asyncio.get_running_loop()
    rows = await store.index.blocks(b.state.id, info.id, lo, hi)
    seen = {r.seq for r in rows}
    pieces = [_Piece(r.seq, r.min_ts, r.max_ts, r.count, r.offset, r.length) for r in rows]
    pieces += [_Piece(e.seq, e.min_ts, e.max_ts, e.count, e.offset, e.length)
               for e in list(b.pending)
               if e.series_id == info.id and e.max_ts >= lo and e.min_ts < hi and e.seq not in seen]
    head_ts, head_raw, head_strings = await loop.run_in_executor(
        store._store_thread, b.head_sync, info.id)
    if len(head_ts):
        head = _head_columns(info.type, head_ts, head_raw, head_strings)
        pieces.append(_Piece(_HEAD_SEQ, min(head_ts), max(head_ts), len(head_ts), head=head))
    pieces.sort(key=lambda p: (p.min_ts, p.seq))

    # Runs of pieces whose spans overlap, each merged as one; batches of runs per thread hop.
    batch: list[list[_Piece]] = []
    batch_n = 0
    run: list[_Piece] = []
    run_max = _MIN_TS
    for p in pieces:
        if run and p.min_ts > run_max:
            batch.append(run)
            batch_n += sum(q.count for q in run)
            run, run_max = [], _MIN_TS
            if batch_n >= batch_points:
                cols = await loop.run_in_executor(store._read_thread, _read_batch, b, info, batch, lo, hi)
                if cols is not None:
                    yield cols
                batch, batch_n = [], 0
        run.append(p)
        run_max = max(run_max, p.max_ts)
    if run:
        batch.append(run)
    if batch:
        cols = await loop.run_in_executor(store._read_thread, _read_batch, b, info, batch, lo, hi)
        if cols is not None:
            yield cols


def _read_piece(b: Bucket, p: _Piece):
    if p.head is not None:
        return p.head
    status, block = b.ring.read(p.offset, p.length, p.seq)
    if status == STALE:
        return None   # overwritten since the index was read: evicted
    if status == OK:
        try:
            return codec.decode(block)
        except CorruptBlock as e:
            why = str(e)
    else:
        why = "entry checksum mismatch"
    if p.seq not in b.corrupt_seqs:   # counted at the next checkpoint, logged once
        b.corrupt_seqs.add(p.seq)
        log.error("bucket %s: block %d at offset %d is damaged (%s); skipped",
                  b.name, p.seq, p.offset, why)
    return None


def _read_batch(b: Bucket, info: SeriesInfo, runs: list[list[_Piece]], lo: int, hi: int):
    """Runs on the read thread: reads, decodes and merges the runs; (ts, values) or None."""
    type_ = info.type
    out_ts, out_v = array("q"), _empty_values(type_)
    for run in runs:
        parts = []
        for p in sorted(run, key=lambda p: p.seq):   # oldest write first: the last one wins
            cols = _read_piece(b, p)
            if cols is not None and len(cols[0]):
                parts.append(cols)
        if not parts:
            continue
        if len(parts) == 1 and run[0].head is None:
            ts, values = parts[0]
        else:
            ts, values = _merge(type_, parts)
        out_ts.extend(ts)
        out_v.extend(values)
    # Only the first and last runs can reach outside the range.
    a = bisect.bisect_left(out_ts, lo)
    z = bisect.bisect_left(out_ts, hi)
    if a or z < len(out_ts):
        out_ts, out_v = out_ts[a:z], out_v[a:z]
    return (out_ts, out_v) if len(out_ts) else None


def _merge(type_: int, parts):
    ts = array("q")
    values = _empty_values(type_)
    for t, v in parts:
        ts.extend(t)
        values.extend(v)
    order = merge_order(ts)
    merged_ts = gather64(ts, order, "q")
    if type_ in _TYPECODES:
        return merged_ts, gather64(values, order, _TYPECODES[type_])
    if type_ == _BOOL:
        return merged_ts, array("B", (values[i] for i in order))
    return merged_ts, [values[i] for i in order]
