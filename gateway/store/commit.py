"""Group commit: when the points writers wait for are logged, synced and acknowledged.

A writer's batch is in the heads at once; the writer then waits for the commit that logs it:
one WAL record for all points taken since the previous commit, one fdatasync, then every writer
covered is answered. A commit runs once per ``wal_sync`` interval while writers wait (or at once
with ``"always"``), and early when ``commit_points`` points are waiting. After logging, full or
old heads are sealed into blocks appended to the bucket's ring file.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Iterable

from gateway.errors import StoreError
from gateway.store.bucket import Bucket, monotonic_ms
from gateway.store.threads import StoreThreads

log = logging.getLogger("gateway.store")


class GroupCommit:
    def __init__(self, buckets: Iterable[Bucket], threads: StoreThreads, wal_sync,
                 commit_points: int, wal_segment_size: int) -> None:
        self.buckets = list(buckets)
        self.threads = threads
        self.interval = 0.0 if wal_sync == "always" else float(wal_sync)
        self.commit_points = commit_points
        self.wal_segment_size = wal_segment_size
        self._wanted = asyncio.Event()
        self._urgent = asyncio.Event()

    async def wait_durable(self, b: Bucket, generation: int, unlogged: int) -> None:
        """Returns once batch ``generation`` of the bucket is durable; raises StoreError when
        the commit that covers it failed."""
        fut = b.durable_future(generation)
        if fut is None:
            return
        self._wanted.set()
        if self.interval == 0 or unlogged >= self.commit_points:
            self._urgent.set()
        await fut

    async def run(self) -> None:
        """Runs group commits: once per wal_sync interval while writers wait, at once when
        commit_points points wait; and, while that load lasts (each commit still finds at
        least a quarter of commit_points waiting), back to back, each covering what arrived
        during the one before, so writers never sit out an interval behind a busy pipeline."""
        last = time.monotonic()
        loaded = False
        while True:
            await self._wanted.wait()
            delay = last + self.interval - time.monotonic()
            if delay > 0 and not loaded and not self._urgent.is_set():
                try:
                    await asyncio.wait_for(self._urgent.wait(), delay)
                except asyncio.TimeoutError:
                    pass
            urgent = self._urgent.is_set()
            self._wanted.clear()
            self._urgent.clear()
            last = time.monotonic()
            waiting = sum(b.unlogged_points for b in self.buckets)
            loaded = urgent or (loaded and waiting * 4 >= self.commit_points)
            for b in self.buckets:
                if b.waiters:
                    await self.commit(b)

    async def commit(self, b: Bucket) -> None:
        """One group commit of a bucket: log, seal, sync; then the writers are answered.
        Commits of a bucket never overlap (flush and close commit too): a segment switch must
        not close the file another commit is syncing."""
        async with b.commit_lock:
            await self._commit_locked(b)

    async def _commit_locked(self, b: Bucket) -> None:
        logged = await self.threads.on_store_thread(b.log_and_seal_on_thread, monotonic_ms())
        b.absorb(logged.sealed, logged.created)
        b.note_seal_error(logged.seal_error)
        error = logged.log_error
        if error is None:
            try:
                await self.threads.on_sync_thread(b.wal.sync)
                if logged.sealed_directly:
                    await self.threads.on_sync_thread(b.ring.sync)
            except StoreError as e:
                error = e
        if error is not None:
            b.counters["commit_errors"] += 1
            log.error("bucket %s: write failed: %s", b.name, error)
            error = StoreError(f"bucket {b.name}: write not stored: {error}")
        b.settle(logged.generation, error)
        if error is None and b.wal.size >= self.wal_segment_size:
            try:
                await self.threads.on_store_thread(b.new_segment_on_thread)
            except StoreError as e:
                log.error("bucket %s: cannot start a new WAL segment: %s", b.name, e)
        elif error is not None:
            # After a failed write or sync the segment's tail is in doubt: start afresh.
            try:
                await self.threads.on_store_thread(b.new_segment_on_thread)
            except StoreError:
                pass
        if b.waiters:
            self._wanted.set()
