"""Replication positions: which blocks each stream has sent, and reading blocks in order.

A stream (named by its sender) reads sealed blocks by sequence number and records how far it got
(its cursor). Cursors are kept in the index and, at checkpoints, in a file beside the ring, so that
an index rebuilt from the ring restarts no stream at zero. Retention that drops blocks above the
lowest cursor counts them as dropped before forwarding.

Sealed blocks are read whether or not a checkpoint has indexed them yet, so a stream never waits
for one. Head points are copied for a stream only when every one of them is durable: at once
when the bucket's last commit covered every batch taken (and no sealed block is on its way to
the bucket's list), else by the next group commit right after it logged everything waiting,
handed out once that commit's sync succeeded (under continuous ingest there is no quiet
moment, but every commit is one).
"""

from __future__ import annotations

import asyncio
from array import array
from dataclasses import dataclass
from typing import Any

from gateway.store.bucket import Bucket, HeadPoints
from gateway.store.series_table import SeriesInfo
from gateway.store.index import BlockIndex
from gateway.store.reading import StoreReader


@dataclass(frozen=True, slots=True)
class StoredBlock:
    """A sealed block as replication reads it: its sequence number and decoded points."""

    seq: int
    series: SeriesInfo
    timestamps: array
    values: Any


class ReplicationPositions:
    def __init__(self, index: BlockIndex, reader: StoreReader) -> None:
        self.index = index
        self.reader = reader

    async def set_cursor(self, b: Bucket, name: str, seq: int | None) -> None:
        await self.index.set_cursor(name, b.state.id, seq)
        if seq is None:
            b.cursors.pop(name, None)
        else:
            b.cursors[name] = seq

    async def blocks_since(self, b: Bucket, after_seq: int, limit: int) -> list[StoredBlock]:
        rows = await self.index.blocks_after(b.state.id, after_seq, limit)
        refs = {r.seq: (r.series, r.offset, r.length) for r in rows}
        for e in list(b.pending):  # sealed since the last checkpoint
            if e.seq > after_seq:
                refs.setdefault(e.seq, (e.series_id, e.offset, e.length))
        wanted = sorted(refs)[:limit]
        decoded = await self.reader.decoded_blocks(b, [(seq, refs[seq][1], refs[seq][2])
                                                       for seq in wanted])
        out = []
        for seq, got in zip(wanted, decoded):
            info = b.catalogue.get(refs[seq][0])
            if got is not None and info is not None:
                out.append(StoredBlock(seq, info, got[0], got[1]))
        return out

    @staticmethod
    def last_sealed_seq(b: Bucket) -> int:
        """The sequence number of the newest block written to the bucket's ring."""
        return b.ring.position[1] - 1

    async def durable_heads(self, b: Bucket, measurements, timeout: float):
        """Every non-empty head (arrival order) as [(SeriesInfo, HeadPoints)] and the newest
        sealed sequence number, all durable; None when no commit made a copy within
        ``timeout`` seconds."""
        got = self.quiet_heads(b)
        if got is None:
            try:
                copied, last_seq = await asyncio.wait_for(b.want_head_copy(), timeout)
            except asyncio.TimeoutError:
                return None
            got = ([(b.catalogue[sid], head) for sid, head in copied if sid in b.catalogue],
                   last_seq)
        heads, last_seq = got
        if measurements is not None:
            heads = [(info, head) for info, head in heads if info.measurement in measurements]
        return heads, last_seq

    @staticmethod
    def quiet_heads(b: Bucket) -> tuple[list[tuple[SeriesInfo, HeadPoints]], int] | None:
        """Every head and the newest sealed sequence number, if right now every point in the
        heads is durable and every sealed block is readable by :meth:`blocks_since`; None
        otherwise. Loop thread."""
        if b.durable_generation < b.generation or not b.lock.acquire(blocking=False):
            return None
        try:
            if b.durable_generation < b.generation:
                return None
            last_seq = b.ring.position[1] - 1
            known = max([e.seq for e in b.pending] + [b.state.next_seq - 1])
            if last_seq > known:
                return None  # a seal's blocks are on their way to Bucket.pending
            out = []
            for sid, info in list(b.catalogue.items()):
                head = HeadPoints(*b.heads.head(sid))
                if len(head.timestamps):
                    out.append((info, head))
            return out, last_seq
        finally:
            b.lock.release()
