"""Replication positions: how far each stream has sent, and reading blocks in order.

A stream (named by its sender) reads sealed blocks by sequence number and records how far it got
(its cursor), and the LSN of the WAL up to which every point was acknowledged (its write-order
position, which covers the points it sent from heads). Both are written to the bucket's position
file as they move (:mod:`~gateway.store.position_file`, one sync); checkpoints copy the cursors
into the index and into a file beside the ring, so that an index rebuilt from the ring restarts
no stream at zero. Retention that drops blocks above the lowest cursor counts them as dropped
before forwarding. After a restart, :meth:`ReplicationPositions.logged_upto` replays the WAL
records up to a stream's LSN into scratch heads: the points it had sent that may still come up
in blocks after its cursor or in heads (the WAL is kept for it, see
:meth:`Bucket.wal_needed_from`).

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

from gateway.errors import StoreError
from gateway.store.bucket import Bucket, HeadPoints
from gateway.store.native import Heads
from gateway.store.series_table import SeriesInfo
from gateway.store.index import BlockIndex
from gateway.store.reading import StoreReader
from gateway.store.threads import StoreThreads


@dataclass(frozen=True, slots=True)
class StoredBlock:
    """A sealed block as replication reads it: its sequence number and decoded points."""

    seq: int
    series: SeriesInfo
    timestamps: array
    values: Any


class ReplicationPositions:
    def __init__(self, index: BlockIndex, reader: StoreReader, threads: StoreThreads) -> None:
        self.index = index
        self.reader = reader
        self.threads = threads
        self._writing: dict[str, asyncio.Lock] = {}   # per bucket: one position write at a time

    async def set_cursor(self, b: Bucket, name: str, seq: int | None) -> None:
        if seq is None:   # the stream is gone: from the index at once
            await self.index.set_cursor(name, b.state.id, None)
            b.cursors_indexed.pop(name, None)
        await self._write(b, name, seq, b.lsn_positions.get(name, 0))

    async def set_lsn(self, b: Bucket, name: str, lsn: int) -> None:
        """Records that stream ``name`` has every point of the bucket's WAL records up to
        ``lsn`` acknowledged."""
        await self._write(b, name, b.cursors.get(name, 0), lsn)

    async def _write(self, b: Bucket, name: str, seq: int | None, lsn: int) -> None:
        """Writes the bucket's position file with the stream's new position (None: the
        stream removed), then takes it in memory. Raises StoreError."""
        async with self._writing.setdefault(b.name, asyncio.Lock()):
            positions = {n: (s, b.lsn_positions.get(n, 0)) for n, s in b.cursors.items()}
            if seq is None:
                positions.pop(name, None)
            else:
                positions[name] = (seq, lsn)
            await self.threads.on_store_thread(b.position_file.save, positions)
            if seq is None:
                b.cursors.pop(name, None)
                b.lsn_positions.pop(name, None)
            else:
                b.cursors[name], b.lsn_positions[name] = seq, lsn

    async def logged_upto(self, b: Bucket, lsn: int) -> list[tuple[SeriesInfo, HeadPoints]]:
        """The points of the WAL records up to ``lsn`` that the bucket's segments still hold,
        per series (arrival order), replayed into scratch heads on the read thread."""
        segments = [path for _, path in b.segments]
        got = await self.threads.on_read_thread(_replay_upto, segments, lsn)
        return [(b.catalogue[sid], head) for sid, head in got if sid in b.catalogue]

    async def blocks_since(self, b: Bucket, after_seq: int, limit: int) -> list[StoredBlock]:
        # The blocks not in the index are listed before it is read: a block a checkpoint
        # commits meanwhile is then in the list or in what the index gives, never in neither
        # (a gap the stream's cursor would skip).
        unindexed = [e for e in b.unindexed_blocks() if e.seq > after_seq]
        rows = await self.index.blocks_after(b.state.id, after_seq, limit)
        refs = {r.seq: (r.series, r.offset, r.length) for r in rows}
        for e in unindexed:
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
        """Every non-empty head (arrival order) as [(SeriesInfo, HeadPoints)], the newest
        sealed sequence number and the LSN of the last WAL record, all durable; None when no
        commit made a copy within ``timeout`` seconds."""
        got = self.quiet_heads(b)
        if got is None:
            try:
                copied, last_seq, lsn = await asyncio.wait_for(b.want_head_copy(), timeout)
            except asyncio.TimeoutError:
                return None
            got = ([(b.catalogue[sid], head) for sid, head in copied if sid in b.catalogue],
                   last_seq, lsn)
        heads, last_seq, lsn = got
        if measurements is not None:
            heads = [(info, head) for info, head in heads if info.measurement in measurements]
        return heads, last_seq, lsn

    @staticmethod
    def quiet_heads(b: Bucket) -> tuple[list[tuple[SeriesInfo, HeadPoints]], int, int] | None:
        """Every head, the newest sealed sequence number and the LSN of the last WAL record,
        if right now every point in the heads is durable and every sealed block is readable
        by :meth:`blocks_since`; None otherwise. Loop thread."""
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
            return out, last_seq, b.heads.next_lsn() - 1
        finally:
            b.lock.release()


def _replay_upto(segments: list[str], lsn: int) -> list[tuple[int, HeadPoints]]:
    """Replays the records up to ``lsn`` of the segment files into scratch heads and returns
    their points per series id. A segment deleted meanwhile (its blocks were acknowledged) or
    unreadable adds nothing."""
    scratch = Heads(1 << 30, 0)   # replay never seals
    try:
        for path in segments:
            try:
                with open(path, "rb") as f:
                    data = f.read()
                scratch.replay(data, 0, lsn)
            except (OSError, StoreError, MemoryError):
                continue   # (MemoryError: a series past what one head holds; the rest goes on)
        out = []
        for sid in range(1, scratch.counters()["max_series_id"] + 1):
            head = HeadPoints(*scratch.head(sid))
            if len(head.timestamps):
                out.append((sid, head))
        return out
    finally:
        scratch.close()
