"""Group commit: when the points writers wait for are logged, synced and acknowledged.

A writer's batch is in the heads at once; a writer that waits for durability (an MQTT PUBACK,
an HTTP 204, ``gateway write``) then waits for the commit that logs it: one WAL record for all
points taken since the previous commit, one fdatasync, then every writer covered is answered.

When a commit runs:

* at once when the points waiting would fill a WAL page or more (estimated from what recent
  commits wrote per point): a sync writes a page anyway, so holding such writers back saves
  the card nothing and costs them the interval; writers that send large batches and wait for
  each answer get full speed;
* at once when every sender that is sending waits: writers that send a batch and wait for its
  answer before the next (an HTTP client, ``gateway write``) say who they are (``sender``);
  when each sender heard from within the last interval has a write waiting, nobody is going to
  add to the commit, so holding it back only slows them (a lone Telegraf draining its buffer in
  1,000-line batches would get one batch a second). Writes without a sender (the MQTT reader,
  whose writes gather many publishers' messages, several in flight) never start a commit so;
* otherwise once per ``wal_sync`` interval while writers wait (or at once with ``"always"``),
  so that small writes share one sync;
* early when ``commit_points`` points wait (bounds memory); under sustained load back to back;
* for points nobody waits for (local sensors), at the latest ``local_sync`` after the oldest
  of them arrived; until then they ride along with any commit of their bucket.

After logging, full or old heads are sealed into blocks appended to the bucket's ring file.

Each WAL sync is timed on the sync thread (the fdatasync alone, not the wait for the thread)
into :attr:`GroupCommit.sync_seconds`, a histogram per bucket that /metrics exports. It keeps
its figures itself and makes the Prometheus metric family only when /metrics collects it: a
process that only reads (a query, an export) never loads prometheus_client (about 5 MB).
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import logging
import threading
import time
from typing import Hashable, Iterable

from gateway.errors import StoreError
from gateway.logs import Throttled
from gateway.store.bucket import Bucket, monotonic_ms
from gateway.store.threads import StoreThreads

log = logging.getLogger("gateway.store")

#: A sync writes at least one page of the WAL, however little it holds.
PAGE_BYTES = 4096
#: A commit (write, fdatasync) running longer than this means the store is stuck: an SD card
#: that stopped answering. Far above any healthy sync, which takes milliseconds to seconds.
COMMIT_STALL_S = 120.0
#: Upper bounds (seconds) of the WAL sync latency histogram: an SSD syncs in well under a
#: millisecond, a good SD card in a few, a worn one in hundreds.
SYNC_SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                        2.5, 5.0, 10.0)


class SyncSeconds:
    """WAL sync latency by bucket as a Prometheus histogram counts it (a sync is counted in
    the first bucket whose upper bound it does not exceed; sum of the seconds)."""

    NAME = "gateway_store_wal_sync_seconds"

    def __init__(self, bounds: tuple[float, ...] = SYNC_SECONDS_BUCKETS) -> None:
        self.bounds = bounds
        self._counts: dict[str, list[int]] = {}   # per bound, then one for +Inf
        self._sums: dict[str, float] = {}
        self._lock = threading.Lock()             # observed on the sync thread, read by /metrics

    def observe(self, bucket: str, seconds: float) -> None:
        k = bisect.bisect_left(self.bounds, seconds)
        with self._lock:
            counts = self._counts.setdefault(bucket, [0] * (len(self.bounds) + 1))
            counts[k] += 1
            self._sums[bucket] = self._sums.get(bucket, 0.0) + seconds

    def collect(self) -> list:
        """The histogram as a Prometheus metric family (cumulative buckets, count, sum)."""
        from prometheus_client.core import HistogramMetricFamily
        from prometheus_client.utils import floatToGoString

        family = HistogramMetricFamily(self.NAME, "Time one WAL fdatasync took", labels=["bucket"])
        with self._lock:
            figures = [(b, list(c), self._sums[b]) for b, c in sorted(self._counts.items())]
        les = [floatToGoString(b) for b in self.bounds] + ["+Inf"]
        for bucket, counts, total in figures:
            family.add_metric([bucket], list(zip(les, itertools.accumulate(counts))), total)
        return [family]


class GroupCommit:
    def __init__(self, buckets: Iterable[Bucket], threads: StoreThreads, wal_sync,
                 commit_points: int, wal_segment_size: int, local_sync: float = 30.0) -> None:
        self.buckets = list(buckets)
        self.threads = threads
        self.interval = 0.0 if wal_sync == "always" else float(wal_sync)
        self.commit_points = commit_points
        self.wal_segment_size = wal_segment_size
        self.local_sync = local_sync
        self._wanted = asyncio.Event()
        self._urgent = asyncio.Event()
        self._busy_since: float | None = None   # time.monotonic() when the running commit began
        #: Senders (see wait_durable) heard from within the last interval: when each last wrote
        #: or was answered (time.monotonic()), and how many of their writes wait.
        self._heard: dict[Hashable, float] = {}
        self._waiting: dict[Hashable, int] = {}
        #: WAL sync latency by bucket (/metrics collects it).
        self.sync_seconds = SyncSeconds()
        # A full disk fails every commit: its error is logged once a minute, not each time.
        self._failed = {b.name: Throttled(log) for b in self.buckets}

    def failing(self) -> list[str]:
        """The latest error of each bucket whose commits fail now (none since a success)."""
        return [t.last for t in self._failed.values() if t.last]

    def stalled(self, now: float | None = None) -> bool:
        """True while one commit has been running for more than COMMIT_STALL_S."""
        started = self._busy_since
        return started is not None and (now if now is not None else time.monotonic()) - started \
            > COMMIT_STALL_S

    async def wait_durable(self, b: Bucket, generation: int, unlogged: int,
                           sender: Hashable | None = None) -> None:
        """Returns once batch ``generation`` of the bucket is durable; raises StoreError when
        the commit that covers it failed. ``sender`` names a writer that waits for this answer
        before it sends again (None: not such a writer, or unknown)."""
        fut = b.durable_future(generation)
        if fut is None:
            return
        self._wanted.set()
        if sender is not None:
            self._heard[sender] = time.monotonic()
            self._waiting[sender] = self._waiting.get(sender, 0) + 1
        if (self.interval == 0 or unlogged >= self.commit_points
                or unlogged * b.wal_bytes_per_point >= PAGE_BYTES
                or (sender is not None and self.every_sender_waits())):
            self._urgent.set()
        try:
            await fut
        finally:
            if sender is not None:
                self._heard[sender] = time.monotonic()   # its next write follows its answer
                if self._waiting[sender] == 1:
                    del self._waiting[sender]
                else:
                    self._waiting[sender] -= 1

    def every_sender_waits(self) -> bool:
        """True when every sender heard from within the last interval has a write waiting.
        Senders not heard from for longer are forgotten."""
        horizon = time.monotonic() - self.interval
        for key in [k for k, t in self._heard.items() if t < horizon and k not in self._waiting]:
            del self._heard[key]
        return all(k in self._waiting for k in self._heard)

    def note_unwaited(self, b: Bucket, generation: int) -> None:
        """Batch ``generation`` was taken and nobody waits for it: it is logged with the next
        commit of its bucket, at the latest ``local_sync`` from the oldest such point."""
        first = b.unwaited_since is None
        b.note_unwaited(generation)
        if first:
            self._wanted.set()   # the loop learns of the new deadline

    def _local_deadline(self) -> float | None:
        since = [b.unwaited_since for b in self.buckets if b.unwaited_since is not None]
        return min(since) + self.local_sync if since else None

    async def run(self) -> None:
        """Runs group commits: for waiting writers at once when their points fill a page, else
        once per wal_sync interval, and at once when commit_points points wait; while that
        load lasts (each commit still finds at least a quarter of commit_points waiting), back
        to back, each covering what arrived during the one before, so writers never sit out an
        interval behind a busy pipeline. Points nobody waits for are committed when their
        local_sync is up, if no commit took them along before."""
        last = time.monotonic()
        loaded = False
        while True:
            if not any(b.waiters for b in self.buckets):
                deadline = self._local_deadline()
                timeout = None if deadline is None else deadline - time.monotonic()
                if timeout is None or timeout > 0:
                    self._wanted.clear()
                    try:
                        await asyncio.wait_for(self._wanted.wait(), timeout)
                    except asyncio.TimeoutError:
                        pass
                    continue
                now = time.monotonic()
                for b in self.buckets:
                    if b.unwaited_due(now, self.local_sync):
                        await self.commit(b)
                continue
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
                if b.waiters or b.unwaited_due(last, self.local_sync):
                    await self.commit(b)

    def _timed_sync(self, b: Bucket) -> None:
        """The bucket's WAL sync, timed (sync thread). A failed sync is not timed."""
        started = time.perf_counter()
        b.wal.sync()
        self.sync_seconds.observe(b.name, time.perf_counter() - started)

    async def commit(self, b: Bucket) -> None:
        """One group commit of a bucket: log, seal, sync; then the writers are answered.
        Commits of a bucket never overlap (flush and close commit too): a segment switch must
        not close the file another commit is syncing."""
        async with b.commit_lock:
            self._busy_since = time.monotonic()
            try:
                await self._commit_locked(b)
            finally:
                self._busy_since = None

    async def _commit_locked(self, b: Bucket) -> None:
        logged = await self.threads.on_store_thread(b.log_and_seal_on_thread, monotonic_ms())
        b.absorb(logged.sealed, logged.created)
        b.note_seal_error(logged.seal_error)
        error = logged.log_error
        if error is None:
            try:
                b.counters["wal_syncs"] += 1
                await self.threads.on_sync_thread(self._timed_sync, b)
                if logged.sealed_directly:
                    await self.threads.on_sync_thread(b.ring.sync)
            except StoreError as e:
                error = e
        if error is not None:
            b.counters["commit_errors"] += 1
            self._failed[b.name].failure("bucket %s: write failed: %s", b.name, error)
            error = StoreError(f"bucket {b.name}: write not stored: {error}")
        else:
            self._failed[b.name].success("bucket %s: writes are stored again", b.name)
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
