"""Checkpoints and retention: what is in the ring becomes durable in the index.

Every ``checkpoint_interval`` old heads are sealed, the ring is synced, new blocks and series go
to the index in one transaction (evicting what the ring overwrote, expiring what is older than
the retention) and WAL segments whose points are all in synced blocks are deleted. A checkpoint
that fails leaves everything it took in the bucket for the next one (:meth:`Bucket.restore`).

A periodic checkpoint lets sealed blocks wait for the index up to INDEX_BATCH_S: heads sealed by
age come in bursts a checkpoint or two apart (local sensors and LAN devices started a few
seconds apart), and each burst's transaction rewrites a leaf of the index per series, whatever
the number of blocks (about 1 MB for 100 series once the index holds a month of blocks), so
they share one. Nothing waits that the index alone would keep: blocks are synced in the ring
first, and recovery follows the ring's chain from the index's checkpoint (so a cut while blocks
wait finds them there, as it finds those of a cut before the transaction). New series, damage
and expiry are recorded at once, and blocks wait only while they hold a small share of the
ring. Reads and replication take the waiting blocks from the bucket's list, as they take a
checkpoint's; an index row of a block they overwrote reads as evicted, as within a checkpoint
interval.
"""

from __future__ import annotations

import asyncio
import logging
import time
from array import array
from typing import Callable, Iterable

from gateway.errors import StoreError
from gateway.logs import Throttled
from gateway.store.bucket import Bucket, Unindexed, monotonic_ms
from gateway.store.index import BlockIndex
from gateway.store.native import RING_HEADER_SIZE
from gateway.store.threads import StoreThreads

log = logging.getLogger("gateway.store")

#: How long a periodic checkpoint lets sealed blocks wait for the index (see above).
INDEX_BATCH_S = 60.0
#: ... and at most this share of the ring's data area, so that the waiting blocks never come
#: near a lap of the ring (reads judge index rows overwritten since the last transaction by
#: the ring's position and bytes written since then).
INDEX_BATCH_RING_SHARE = 1 / 16


class Checkpointer:
    def __init__(self, buckets: Iterable[Bucket], index: BlockIndex, threads: StoreThreads,
                 clock: Callable[[], int], interval: float) -> None:
        self.buckets = list(buckets)
        self.index = index
        self.threads = threads
        self.clock = clock
        self.interval = interval
        self._lock = asyncio.Lock()
        self._failed = {b.name: Throttled(log) for b in self.buckets}
        #: Per bucket, since when (time.monotonic()) sealed blocks wait for the index.
        self._waiting_since: dict[str, float] = {}

    def failing(self) -> list[str]:
        """The latest error of each bucket whose checkpoints fail now (none since a success)."""
        return [t.last for t in self._failed.values() if t.last]

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            for b in self.buckets:
                try:
                    await self.checkpoint(b, batch=True)
                except StoreError as e:
                    b.counters["checkpoint_errors"] += 1
                    self._failed[b.name].failure("bucket %s: checkpoint failed (retried): %s",
                                                 b.name, e)
                else:
                    self._failed[b.name].success("bucket %s: checkpoints succeed again", b.name)

    async def checkpoint(self, b: Bucket, force_seal: bool = False, batch: bool = False) -> None:
        """Seals due heads (all with force_seal), syncs the ring and records it in the index
        (with batch, blocks alone may wait for a later checkpoint: see INDEX_BATCH_S).
        Raises StoreError when the series file or the index cannot be written."""
        async with self._lock:
            sealed = await self.threads.on_store_thread(b.seal_due_on_thread, monotonic_ms(),
                                                        force_seal)
            b.absorb(sealed.sealed, sealed.created)
            b.note_seal_error(sealed.error)
            await self.threads.on_sync_thread(b.ring.sync)
            if batch and self._blocks_may_wait(b):
                await self.threads.on_store_thread(b.delete_segments_on_thread, sealed.min_lsn,
                                                   b.wal_needed_from(sealed))
                return
            self._waiting_since.pop(b.name, None)
            todo = b.take_unindexed()
            written = b.ring.bytes_written
            if todo.file_series:
                try:
                    await self.threads.on_store_thread(b.append_series_file_on_thread,
                                                       todo.file_series)
                except OSError as e:
                    b.restore(todo)
                    raise StoreError(f"cannot write series file {b.series_path}: {e}") from e
                todo.file_series = array("I")
            await self._save_cursors(b)
            try:
                await self._record(b, todo)
            except StoreError:
                b.restore(todo)
                raise
            b.indexing = []  # in the index now
            b.written_at_checkpoint = written
            await self.threads.on_store_thread(b.delete_segments_on_thread, sealed.min_lsn,
                                               b.wal_needed_from(sealed))
        if b.index_suspects:
            await self.repair_index(b)

    def _blocks_may_wait(self, b: Bucket) -> bool:
        """True when all the bucket has for the index is blocks that may wait a while longer
        (and notes since when they wait)."""
        if not b.pending or b.pending_series or b.corrupt_seqs or b.index_suspects:
            return False
        state = b.state
        if b.retention_ns and state.first_block_end is not None \
                and self.clock() - b.retention_ns > state.first_block_end:
            return False   # a block is due to expire
        if b.ring.bytes_written - b.written_at_checkpoint > b.data_capacity * INDEX_BATCH_RING_SHARE:
            return False
        now = time.monotonic()
        since = self._waiting_since.setdefault(b.name, now)
        return now - since < INDEX_BATCH_S

    async def repair_index(self, b: Bucket) -> None:
        """Checks the bucket's index rows against a full scan of the ring, after a row led to
        an entry that is not its block: rows that point to the wrong place are corrected,
        blocks that lost their row get it back, rows of blocks the ring no longer holds are
        dropped and counted as corrupt blocks. Works on a read-only store's in-memory index."""
        async with self._lock:
            suspects, b.index_suspects = b.index_suspects, set()
            if not suspects:
                return
            found = await self.threads.on_store_thread(b.scan_ring_on_thread)
            state = b.state
            expire = self.clock() - b.retention_ns if b.retention_ns else None
            # Blocks the ring wrote over since the checkpoint keep their rows: the next
            # checkpoint evicts them.
            res = await self.index.repair(
                state.id, found, state.next_seq, expire,
                lambda r: b.overwritten_since(state.write_pos, b.written_at_checkpoint,
                                              r.offset, r.length))
            state.counters["corrupt_blocks"] += res.dropped
            b.counters["index_repairs"] += res.corrected + res.restored
            await self.index.refresh_totals(state)
            log.error("bucket %s: index checked against the ring after %d rows led elsewhere: "
                      "%d rows corrected, %d blocks indexed again, %d rows of blocks the ring "
                      "no longer holds dropped", b.name, len(suspects), res.corrected,
                      res.restored, res.dropped)

    async def _record(self, b: Bucket, todo: Unindexed) -> None:
        state = b.state
        blocks = todo.blocks
        position = ((blocks[-1].offset + blocks[-1].length, blocks[-1].seq + 1) if blocks
                    else (state.write_pos, state.next_seq))
        expire = self.clock() - b.retention_ns if b.retention_ns else None
        if expire is not None and (state.first_block_end is None
                                   or expire <= state.first_block_end):
            expire = None  # no block ends before the cutoff yet
        if not todo and expire is None:
            return  # nothing to record: leave the index file alone (no page or journal writes)
        previous_pos = max(state.write_pos, RING_HEADER_SIZE)
        if b.chain_start is not None and blocks:
            previous_pos, b.chain_start = b.chain_start, None
        res = await self.index.commit(state.id, blocks, b.catalogue.rows(todo.series),
                                      todo.sealed_lsn, position,
                                      previous_pos, b.ring.capacity, expire, b.forwarded_seq(),
                                      todo.corrupt)
        state.write_pos, state.next_seq = position
        if res.gone and b.watching:
            await self.threads.on_store_thread(b.newest_dropped_on_thread, res.gone)
        for name in ("evicted_blocks", "evicted_points", "expired_blocks", "expired_points",
                     "dropped_unforwarded"):
            state.counters[name] += getattr(res, name)
        state.counters["corrupt_blocks"] += len(todo.corrupt)
        if res.evicted_blocks or res.expired_blocks or res.added_blocks or todo.corrupt:
            await self.index.refresh_totals(state)
        if res.dropped_unforwarded:
            log.warning("bucket %s: %d points dropped before they were forwarded",
                        b.name, res.dropped_unforwarded)

    async def _save_cursors(self, b: Bucket) -> None:
        """Writes the cursors that changed since the last checkpoint to the index, and the
        cursor file when they changed since it was written. (Streams record their positions
        in the bucket's position file as they go: see ReplicationPositions.)"""
        changed = {n: s for n, s in b.cursors.items() if b.cursors_indexed.get(n) != s}
        if changed:
            await self.index.set_cursors(b.state.id, changed)
            b.cursors_indexed.update(changed)
        if b.cursors_saved is None:
            b.cursors_saved = await self.threads.on_store_thread(b.cursor_file.load)
        if b.cursors == b.cursors_saved:
            return
        cursors = dict(b.cursors)
        try:
            await self.threads.on_store_thread(b.cursor_file.save, cursors)
        except OSError as e:
            # Only an index rebuild reads the file: the checkpoint goes on, the next one retries.
            log.error("bucket %s: cannot write %s: %s", b.name, b.cursor_file.path, e)
            return
        b.cursors_saved = cursors
