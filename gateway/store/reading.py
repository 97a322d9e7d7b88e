"""Reading the store: the catalogue's series, and a series' points from blocks and head.

A series' points live in three places: sealed blocks in the index, blocks sealed since the last
checkpoint (the bucket's pending list) and the head (on the store thread). :class:`StoreReader`
reads the blocks on the read thread, copies the head on the store thread and merges them in
time order; where one timestamp was written more than once, the last write wins.
"""

from __future__ import annotations

import bisect
import logging
from array import array
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping

from gateway import codec
from gateway.datamodel import BOOL, FLOAT, INT, MAX_TIME_NS, MIN_TIME_NS, STRING, UINT, WORD_TYPECODES
from gateway.errors import CorruptBlock
from gateway.store.bucket import Bucket, HeadPoints, SeriesInfo
from gateway.store.index import BlockIndex
from gateway.store.native import OK, gather64, merge_order
from gateway.store.threads import StoreThreads

log = logging.getLogger("gateway.store")

# Value columns held as 64-bit words in heads and blocks.
_WORD_COLUMNS = {t: WORD_TYPECODES[t] for t in (FLOAT, INT, UINT)}
MIN_TS, MAX_TS = MIN_TIME_NS, MAX_TIME_NS

#: (sequence number, offset, length) of a block in the ring.
BlockRef = tuple[int, int, int]
#: A block to read, with the ring position (and bytes written) from which a later write may
#: have overwritten it.
_Read = tuple[int, int, int, tuple[int, int | None]]


@dataclass(slots=True)
class SeriesColumns:
    """The points of one series in a time range: sorted by time, one point per timestamp."""

    series: SeriesInfo
    timestamps: array
    values: Any   # array('d' | 'q' | 'Q'), array('B') of 0/1 for booleans, list[str]

    def __len__(self) -> int:
        return len(self.timestamps)

    @property
    def key(self) -> str:
        return self.series.key


def matching_series(b: Bucket, measurement: str | None = None,
                    tags: Mapping[str, str] | None = None,
                    field: str | None = None) -> list[SeriesInfo]:
    """The bucket's series matching the predicate, by key."""
    out = []
    for info in list(b.catalogue.values()):
        if measurement is not None and info.measurement != measurement:
            continue
        if field is not None and info.field != field:
            continue
        if tags and any(info.tags.get(k) != v for k, v in tags.items()):
            continue
        out.append(info)
    out.sort(key=lambda s: s.key)
    return out


class StoreReader:
    def __init__(self, index: BlockIndex, threads: StoreThreads,
                 repair_index: Callable[[Bucket], Awaitable[None]]) -> None:
        self.index = index
        self.threads = threads
        self.repair_index = repair_index

    async def series_columns(self, b: Bucket, info: SeriesInfo, lo: int,
                             hi: int) -> SeriesColumns | None:
        """The points of a series with lo <= time < hi, or None when it has none there."""
        blocks = await self._series_blocks(b, info, lo, hi)
        if b.index_suspects:  # an index row led nowhere: repair the index, then read again
            await self.repair_index(b)
            blocks = await self._series_blocks(b, info, lo, hi)
        head = await self.threads.on_store_thread(b.head_on_thread, info.id)
        return merge(info, blocks, head, lo, hi)

    async def _series_blocks(self, b: Bucket, info: SeriesInfo, lo: int,
                             hi: int) -> list[tuple[array, Any]]:
        # Where the checkpoint stood before the rows are read: the ring may write over them
        # from there on (the next checkpoint then drops their rows).
        since = (b.state.write_pos, b.written_at_checkpoint)
        rows = await self.index.blocks(b.state.id, info.id, lo, hi)
        seen = {r.seq for r in rows}
        refs = [(r.seq, r.offset, r.length, since) for r in rows]
        refs += [(e.seq, e.offset, e.length, (e.offset + e.length, None)) for e in list(b.pending)
                 if e.series_id == info.id and e.max_ts >= lo and e.min_ts < hi and e.seq not in seen]
        refs.sort()
        return await self.threads.on_read_thread(self.read_blocks, b, refs)

    async def last(self, b: Bucket, info: SeriesInfo) -> tuple[int, Any] | None:
        """The newest point (time, value) of a series, or None."""
        newest = await self.index.newest_block_ts(b.state.id, info.id)
        pend = [e.max_ts for e in b.pending if e.series_id == info.id]
        candidates = [t for t in [newest, *pend] if t is not None]
        head = await self.threads.on_store_thread(b.head_on_thread, info.id)
        if head.timestamps:
            candidates.append(max(head.timestamps))
        if not candidates:
            return None
        cols = await self.series_columns(b, info, max(candidates), MAX_TS)
        if cols is None or not len(cols):
            return None
        return cols.timestamps[-1], cols.values[-1]

    async def decoded_block(self, b: Bucket, ref: BlockRef) -> tuple[array, Any] | None:
        """One block's (timestamps, values), or None when it is gone or damaged."""
        since = (b.state.write_pos, b.written_at_checkpoint)
        got = await self.threads.on_read_thread(self.read_blocks, b, [(*ref, since)])
        return got[0] if got else None

    @staticmethod
    def read_blocks(b: Bucket, refs: list[_Read]) -> list[tuple[array, Any]]:
        """Decoded blocks (read thread). A block that the ring wrote over while it was read
        is skipped (evicted: counted as ``overwritten_while_read``); a damaged one is skipped,
        logged once and counted at the next checkpoint; a row of the index that leads to
        another entry is logged and left to :meth:`Checkpointer.repair_index`."""
        out = []
        for seq, offset, length, since in refs:
            status, block = b.ring.read(offset, length, seq)
            if status == OK:
                try:
                    out.append(codec.decode(block))
                    continue
                except CorruptBlock as e:
                    why = str(e)
            elif b.overwritten_since(*since, offset, length):
                b.counters["overwritten_while_read"] += 1
                continue
            elif b.ring.entry_seq_at(offset) != seq:
                # Neither an overwrite nor this block's damaged entry: the index row is wrong.
                if seq not in b.index_suspects:
                    b.index_suspects.add(seq)
                    log.error("bucket %s: the index row of block %d (offset %d, %d bytes) leads "
                              "to no entry of that block; the index is checked against the "
                              "ring", b.name, seq, offset, length)
                continue
            else:
                why = "entry checksum mismatch"
            if seq not in b.corrupt_seqs:
                b.corrupt_seqs.add(seq)
                log.error("bucket %s: block %d at offset %d is damaged (%s); skipped",
                          b.name, seq, offset, why)
        return out


def merge(info: SeriesInfo, blocks: list[tuple[array, Any]], head: HeadPoints, lo: int,
          hi: int) -> SeriesColumns | None:
    """One series' blocks (oldest write first) and head as columns sorted by time, cut to
    lo <= time < hi; None when no point is left."""
    type_ = info.type
    parts_ts = [ts for ts, _ in blocks]
    parts_v = [v for _, v in blocks]
    if len(head.timestamps):
        parts_ts.append(head.timestamps)
        if type_ == STRING:
            parts_v.append(head.strings)
        elif type_ == BOOL:
            parts_v.append(array("B", head.raw.tobytes()[::8]) if head.raw else array("B"))
        else:
            parts_v.append(array(_WORD_COLUMNS[type_], head.raw.tobytes()))
    if not parts_ts:
        return None
    ts = array("q")
    for p in parts_ts:
        ts.extend(p)
    if type_ == STRING:
        values = [v for p in parts_v for v in p]
    else:
        values = array("B" if type_ == BOOL else _WORD_COLUMNS[type_])
        for p in parts_v:
            values.extend(p)
    # Blocks come oldest write first and the head last, so the last write of a timestamp
    # wins (a redelivered point replaces the earlier copy).
    order = merge_order(ts)
    ts = gather64(ts, order, "q")
    if type_ in _WORD_COLUMNS:
        values = gather64(values, order, _WORD_COLUMNS[type_])
    elif type_ == BOOL:
        values = array("B", (values[i] for i in order))
    else:
        values = [values[i] for i in order]
    a = bisect.bisect_left(ts, lo)
    z = bisect.bisect_left(ts, hi)
    if a or z < len(ts):
        ts = ts[a:z]
        values = values[a:z]
    if not len(ts):
        return None
    return SeriesColumns(info, ts, values)
