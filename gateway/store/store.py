"""The store component: buckets of compressed blocks with a WAL, group commit and retention.

:class:`Store` is the one facade that the rest of the gateway uses; the work is done by parts
named for their concept:

- :mod:`~gateway.store.bucket`: one bucket's files, heads and catalogue (store-thread work);
- :mod:`~gateway.store.recovery`: opening after a stop or crash, index rebuild, WAL replay;
- :mod:`~gateway.store.commit`: group commit (when writers' points are logged and synced);
- :mod:`~gateway.store.checkpoint`: the ring recorded in the index, retention, WAL cleanup;
- :mod:`~gateway.store.reading`: the catalogue's series, scans and merges of blocks and heads;
- :mod:`~gateway.store.replication`: replication cursors and reading blocks in order;
- :mod:`~gateway.store.statistics`: figures for the status page;
- :mod:`~gateway.store.threads`: the worker threads all of them hand blocking work to.

Write path: ``write(batch)`` hands the C batch to the bucket's heads (no per-point Python
work), then waits for the group commit that logs it. The control socket through which CLI
commands reach a running store is a component of its own (:mod:`~gateway.store.control`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Hashable, Mapping, TypeVar

from gateway.aggregate import FoldedMany, FoldSpec
from gateway.backoff import backoff_delay
from gateway.clock import HELD_BASE_NS, WallClock
from gateway.errors import StoreError, StoreLocked
from gateway.runtime import Component
from gateway.datamodel import type_name
from gateway.store.bucket import Bucket, monotonic_ms
from gateway.store.series_table import SeriesInfo
from gateway.store.checkpoint import Checkpointer
from gateway.store.commit import GroupCommit
from gateway.store.index import BlockIndex
from gateway.store.hold import Hold
from gateway.store.lock import DataDirLock
from gateway.store.native import batch_point, batch_time_bounds
from gateway.store.reading import (MAX_TS, MIN_TS, SeriesColumns, StoreReader, matching_chunks,
                                   matching_series)
from gateway.store.recovery import Recovery
from gateway.store.replication import ReplicationPositions, StoredBlock
from gateway.store.settings import Access
from gateway.store.statistics import CardWrites, bucket_stats
from gateway.store.threads import StoreThreads

log = logging.getLogger("gateway.store")
_Part = TypeVar("_Part")

#: Series per chunk of a scan: one index query and one thread hop each.
SCAN_CHUNK = 1000

#: How long a starting daemon waits for a command that holds the store to finish with it.
DAEMON_LOCK_WAIT_S = 30.0
LOCK_RETRY_S = 0.1
#: How often the store looks whether the clock became synchronised while it holds points.
HOLD_POLL_S = 1.0


class UnknownBucket(StoreError, KeyError):
    """A bucket name that the configuration does not declare."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a write stored: points taken, points refused because their series has another
    type, points refused because they are older than the bucket's retention (the store would
    drop them at once; InfluxDB refuses them too), points refused because their series would be
    new in a bucket that holds its ``max_series``, and the problem in words."""

    points: int
    refused: int = 0
    problem: str | None = None
    too_old: int = 0
    series_limited: int = 0


class Store(Component):
    """The gateway's store (component name ``store``)."""

    name = "store"

    def __init__(self, data_dir: str, config, *, clock=time.time_ns,
                 access: Access = Access.RUN, wall_clock: WallClock | None = None,
                 max_held: int = 0) -> None:
        super().__init__()
        self.config = config
        self.path = os.path.join(data_dir, "store")
        self.clock = clock
        #: How this process opens the store (:class:`~gateway.store.settings.Access`): read
        #: only, writing with the recorded bucket settings, or applying the configuration's.
        self.access = access
        self.read_only = access is Access.READ
        self.buckets: dict[str, Bucket] = {}
        self.index: BlockIndex | None = None
        # The parts made by open (see the properties of the same names without the "_part").
        self._threads_part: StoreThreads | None = None
        self._lock = DataDirLock(os.path.join(self.path, "LOCK"))
        self._commits_part: GroupCommit | None = None
        self._checkpoints_part: Checkpointer | None = None
        self._reader_part: StoreReader | None = None
        self._write_listeners: list = []
        self._replication_part: ReplicationPositions | None = None
        self._opened = False
        self._closing = False
        self._card: CardWrites | None = None
        self._loops: list[asyncio.Task] = []
        #: The rule for points timed before the clock was synchronised (gateway/clock.py), and
        #: where their points wait (made by open when the rule applies), at most ``max_held``
        #: bytes of them (``[clock] max_held``).
        self.wall_clock = wall_clock
        self._max_held = max_held
        self.hold: Hold | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self, context=None) -> None:
        # A command (gateway write, export) may hold the store for a moment: the daemon waits
        # for it instead of failing to start.
        await self.open(lock_wait=DAEMON_LOCK_WAIT_S)
        if context is not None and not self.read_only:
            await self.forget_replication_streams(
                {stream.name: set(stream.buckets) for stream in context.config.replication})
        await super().start(context)

    async def open(self, lock_wait: float = 0.0) -> "Store":
        """Opens (or creates) the store and recovers it. Raises StoreLocked when another
        process has it open (still, after waiting up to ``lock_wait`` seconds for it)."""
        if self._opened:
            return self
        if self.read_only:
            if not os.path.isdir(self.path):
                raise StoreError(f"there is no store in {os.path.dirname(self.path)}")
            await self._acquire_lock(lock_wait, self._lock.acquire_shared)
        else:
            os.makedirs(self.path, exist_ok=True)
            await self._acquire_lock(lock_wait, self._lock.acquire)
        self._card = CardWrites(self.path)
        try:
            await self._open_locked()
        except BaseException:
            await self._close_files()
            self._lock.release()
            raise
        self._opened = True
        if not self.read_only:
            self._loops = [self.spawn(self._commits.run(), "commit"),
                           self.spawn(self._checkpoints.run(), "checkpoint")]
            if self.wall_clock is not None and self.wall_clock.require_sync:
                self.hold = Hold(self.path, self.wall_clock, self._max_held)
                await asyncio.to_thread(self.hold.open)
                self._loops.append(self.spawn(self._release_held(self.hold, self.wall_clock),
                                              "hold"))
        return self

    def alive(self, now: float | None = None) -> bool:
        """The commit and checkpoint loops run and no commit is stuck (idle is alive): the
        supervisor feeds the systemd watchdog only while this holds. ``now`` is a
        time.monotonic() value (default: the current one)."""
        if not self._opened or self._closing:
            return True   # nothing to judge before open or while closing
        return all(not t.done() for t in self._loops) and not self._commits.stalled(now)

    async def _acquire_lock(self, wait: float, acquire) -> None:
        deadline = time.monotonic() + wait
        logged = False
        while True:
            try:
                acquire()
                return
            except StoreLocked as e:
                if time.monotonic() >= deadline:
                    raise
                if not logged:
                    log.warning("%s; waiting up to %.0f s for it", e, wait)
                    logged = True
            await asyncio.sleep(LOCK_RETRY_S)

    async def _open_locked(self) -> None:
        cfg = self.config
        self._threads_part = StoreThreads()
        self.index = await BlockIndex.open(os.path.join(self.path, "index.sqlite"),
                                           read_only=self.read_only)
        for name in cfg.buckets:
            b = self.buckets[name] = self._new_bucket(name)
            if not await self.threads.on_store_thread(b.open_files_on_thread, self.read_only):
                del self.buckets[name]  # read-only, and the bucket holds no data
        self._commits_part = GroupCommit(self.buckets.values(), self.threads, cfg.wal_sync,
                                         cfg.commit_points, cfg.wal_segment_size,
                                         float(cfg.local_sync))
        self._checkpoints_part = Checkpointer(self.buckets.values(), self.index, self.threads,
                                              self.clock, float(cfg.checkpoint_interval))
        self._reader_part = StoreReader(self.index, self.threads, self._checkpoints.repair_index)
        self._replication_part = ReplicationPositions(self.index, self._reader, self.threads)
        recovery = Recovery(self.index, self.threads, self.access, self.clock)
        for name in list(self.buckets):
            b = self.buckets[name]
            # (a read-only open changes nothing: old keys are read as they are until a writer
            # opens the store)
            outdated = not self.read_only and await recovery.keys_outdated(b)
            await recovery.recover(b)
            if not self.read_only:
                # Persist what recovery found (and seal what replay filled) before taking writes.
                await self._checkpoints.checkpoint(b)
            if outdated:
                # Keys in an older escaping: everything goes into blocks (so the WAL holds
                # nothing to replay), the keys are rewritten, and the bucket opens afresh.
                await self._checkpoints.checkpoint(b, force_seal=True)
                await self.threads.on_store_thread(b.close_on_thread)
                await recovery.migrate_keys(b)
                b = self.buckets[name] = self._new_bucket(name)
                await self.threads.on_store_thread(b.open_files_on_thread, False)
                await recovery.recover(b)
                await self._checkpoints.checkpoint(b)
        buckets = list(self.buckets.values())
        self._commits.buckets = buckets
        self._checkpoints.buckets = buckets

    def _new_bucket(self, name: str) -> Bucket:
        cfg, bcfg = self.config, self.config.buckets[name]
        return Bucket(name, os.path.join(self.path, "buckets", name), int(bcfg.max_size),
                      bcfg.retention.ns if bcfg.retention is not None else None,
                      cfg.head_points, int(float(bcfg.head_max_age or cfg.head_max_age) * 1000),
                      bcfg.max_series or 0, int(cfg.wal_segment_size))

    async def stop(self) -> None:
        await self.close()
        await super().stop()

    async def close(self) -> None:
        """Commits what is waiting, checkpoints, closes the files, releases the lock. Safe twice."""
        if not self._opened or self._closing:
            return
        self._closing = True
        try:
            for b in self.buckets.values() if not self.read_only else ():
                await self._commits.commit(b)
            for b in self.buckets.values() if not self.read_only else ():
                try:
                    await self._checkpoints.checkpoint(b)
                except StoreError as e:
                    log.error("bucket %s: final checkpoint failed: %s", b.name, e)
        finally:
            for t in list(self._tasks):
                t.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            for b in self.buckets.values():
                b.fail_waiters(StoreError("the store closed before the write was durable"))
            await self._close_files()
            self._lock.release()
            self._opened = False

    async def _close_files(self) -> None:
        threads = self._threads_part
        if threads is not None:
            for b in self.buckets.values():
                await threads.on_store_thread(b.close_on_thread)
        if self.index is not None:
            await self.index.close()
            self.index = None
        if threads is not None:
            threads.shutdown()
            self._threads_part = None

    # ------------------------------------------------------------------ parts made by open

    @property
    def threads(self) -> StoreThreads:
        """The store, sync and read threads (from open until close)."""
        return _made_by_open(self._threads_part)

    @property
    def _commits(self) -> GroupCommit:
        return _made_by_open(self._commits_part)

    @property
    def _checkpoints(self) -> Checkpointer:
        return _made_by_open(self._checkpoints_part)

    @property
    def _reader(self) -> StoreReader:
        return _made_by_open(self._reader_part)

    @property
    def _replication(self) -> ReplicationPositions:
        return _made_by_open(self._replication_part)

    async def __aenter__(self) -> "Store":
        return await self.open()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # ------------------------------------------------------------------ writing

    def bucket(self, name: str) -> Bucket:
        try:
            return self.buckets[name]
        except KeyError:
            if name in self.config.buckets:
                raise UnknownBucket(f"bucket {name!r} holds no data yet (no ring file in "
                                    f"{self.path})") from None
            raise UnknownBucket(f"unknown bucket {name!r} (configured: "
                                f"{', '.join(sorted(self.config.buckets))})") from None

    def _check_open(self) -> None:
        if not self._opened or self._closing:
            raise StoreError("the store is not open")

    def _check_writable(self) -> None:
        self._check_open()
        self._refuse_read_only()

    def _refuse_read_only(self) -> None:
        if self.read_only:
            raise StoreError(f"the store in {self.path} is open read-only")

    async def write(self, batch, bucket: str = "raw", wait: bool = True,
                    sender: Hashable | None = None) -> WriteResult:
        """Stores the batch; returns once it is durable (in the WAL, synced). Raises StoreError
        (nothing of the batch stored) when the WAL cannot be written or synced.

        ``sender`` names a writer that sends a batch, waits for the answer and only then sends
        the next (an HTTP client's connection, ``gateway write``): when every such writer heard
        from lately is waiting, the commit runs at once instead of at the interval
        (``gateway/store/commit.py``).

        ``wait=False`` is for points nobody acknowledges (local sensors): the call returns
        once the points are in the store (readable at once) and they become durable with the
        next commit of the bucket, at the latest ``local_sync`` later; a power cut before
        that loses them, and a failed commit drops them (counted in ``commit_errors``)."""
        self._check_writable()
        b = self.bucket(bucket)
        if len(batch) == 0:
            return WriteResult(0)
        held = 0
        if self.hold is not None and _newest(batch) >= HELD_BASE_NS:
            batch, held_points = self.hold.split(batch)
            if held_points:
                await self.hold.append(bucket, held_points)
                held = len(held_points)
            if len(batch) == 0:
                return WriteResult(held)
        ptr = batch.c_pointer
        del batch  # the caller may let it go while we wait: the heads hold copies
        bounds = batch_time_bounds(ptr) if self._write_listeners else None
        min_ts = self.clock() - b.retention_ns if b.retention_ns else MIN_TS
        got = b.try_ingest(ptr, monotonic_ms(), min_ts)
        if got is None:  # a commit holds the heads: queue behind it on the store thread
            got = await self.threads.on_store_thread(b.ingest_on_thread, ptr, monotonic_ms(),
                                                     min_ts)
        problems = []
        if got.type_conflicts:
            b.counters["type_conflicts"] += got.type_conflicts
            problems.append(self._conflict_message(b, ptr, got.last_conflict, got.type_conflicts))
            log.warning("bucket %s: %s", b.name, problems[-1])
        if got.too_old:
            assert b.retention_ns is not None   # points are too old only for a retention
            b.counters["too_old"] += got.too_old
            problems.append(f"{got.too_old} point(s) refused: older than the retention of bucket "
                            f"{b.name!r} ({b.retention_ns // 1_000_000_000} s)")
            b.warn_too_old(problems[-1])
        if got.series_limited:
            b.counters["series_limited"] += got.series_limited
            key = batch_point(ptr, got.last_limited)[0].decode("utf-8", "replace")
            problems.append(f"{got.series_limited} point(s) refused: bucket {b.name!r} holds its "
                            f"max_series of {b.max_series} series, so new series such as "
                            f"{key!r} are refused (raise [store.buckets.{b.name}] max_series)")
            b.warn_series_limit(problems[-1])
        del ptr
        if got.created:
            b.add_series(got.created)
        b.unlogged_points = got.unlogged
        if got.taken:
            if wait:
                await self._commits.wait_durable(b, got.generation, got.unlogged, sender)
            else:
                self._commits.note_unwaited(b, got.generation)
            if bounds is not None:
                for listener in list(self._write_listeners):
                    listener(bucket, *bounds)
        return WriteResult(got.taken + held, got.type_conflicts, "; ".join(problems) or None,
                           got.too_old, got.series_limited)

    async def _release_held(self, hold: Hold, clock: WallClock) -> None:
        """Stores the held points with their real times once the clock is synchronised;
        a failed release is tried again (the journal stays until it succeeds)."""
        attempt = 0
        while True:
            if hold.held_bytes and clock.trusted():
                try:
                    await hold.release(self.write, set(self.buckets))
                    attempt = 0
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    hold.last_error = f"cannot store the held points: {e}"
                    log.error("%s", hold.last_error)
                    await asyncio.sleep(backoff_delay(attempt, 1.0, 60.0))
                    attempt += 1
                    continue
            await asyncio.sleep(HOLD_POLL_S)

    def add_write_listener(self, listener) -> None:
        """Calls ``listener(bucket, min_ts, max_ts)`` after each durable write with the time
        bounds of the batch (the downsampling tasks find late data this way)."""
        self._write_listeners.append(listener)

    def remove_write_listener(self, listener) -> None:
        if listener in self._write_listeners:
            self._write_listeners.remove(listener)

    def _conflict_message(self, b: Bucket, ptr, index: int, refused: int) -> str:
        raw_key, type_ = batch_point(ptr, index)
        key = raw_key.decode("utf-8", "replace")
        sid = b.catalogue.id_of(key)
        have = b.catalogue[sid].type_name if sid else "another type"
        return (f"{refused} point(s) refused: field type conflict (series {key!r} is "
                f"{have}, got {type_name(type_)})")

    async def flush(self, bucket: str | None = None, seal: bool = False) -> None:
        """Commits and checkpoints now; with seal, every head becomes a block first (so that
        all data is in the ring and visible to block readers such as replication)."""
        self._check_writable()
        for b in ([self.bucket(bucket)] if bucket else list(self.buckets.values())):
            await self._commits.commit(b)
            await self._checkpoints.checkpoint(b, force_seal=seal)

    # ------------------------------------------------------------------ reading

    def series(self, bucket: str = "raw", measurement: str | None = None,
               tags: Mapping[str, str] | None = None, field: str | None = None) -> list[SeriesInfo]:
        """The catalogue's series matching the predicate, by key."""
        return matching_series(self.bucket(bucket), measurement, tags, field)

    def measurements(self, bucket: str = "raw") -> list[str]:
        return sorted({s.measurement for s in self.series(bucket)})

    def tag_keys(self, bucket: str = "raw", measurement: str | None = None) -> list[str]:
        return sorted({k for s in self.series(bucket, measurement) for k in s.tags})

    def tag_values(self, key: str, bucket: str = "raw", measurement: str | None = None) -> list[str]:
        return sorted({s.tags[key] for s in self.series(bucket, measurement) if key in s.tags})

    def fields(self, bucket: str = "raw", measurement: str | None = None) -> dict[str, str]:
        return {s.field: s.type_name for s in self.series(bucket, measurement)}

    async def scan(self, bucket: str = "raw", start: int | None = None, stop: int | None = None,
                   measurement: str | None = None, tags: Mapping[str, str] | None = None,
                   field: str | None = None) -> list[SeriesColumns]:
        """The points of every matching series with start <= time < stop (ns; None = open),
        one :class:`SeriesColumns` per series that has points, sorted by series key."""
        self._check_open()
        b = self.bucket(bucket)
        lo = MIN_TS if start is None else int(start)
        hi = MAX_TS if stop is None else int(stop)
        out = []
        async for chunk in self.scan_chunks(bucket, start, stop, measurement, tags, field):
            out += chunk
        return out

    async def scan_chunks(self, bucket: str = "raw", start: int | None = None,
                          stop: int | None = None, measurement: str | None = None,
                          tags: Mapping[str, str] | None = None, field: str | None = None,
                          chunk: int = SCAN_CHUNK) -> AsyncIterator[list[SeriesColumns]]:
        """:meth:`scan` a chunk of series at a time (sorted by key): memory stays bounded by
        the chunk, and each chunk costs one index query and one hop to each worker thread."""
        self._check_open()
        b = self.bucket(bucket)
        lo = MIN_TS if start is None else int(start)
        hi = MAX_TS if stop is None else int(stop)
        for infos in matching_chunks(b, measurement, tags, field, chunk):
            got = await self._reader.many_columns(b, infos, lo, hi)
            yield [cols for cols in got if cols is not None]

    async def scan_series(self, key: str, bucket: str = "raw", start: int | None = None,
                          stop: int | None = None) -> SeriesColumns | None:
        self._check_open()
        b = self.bucket(bucket)
        sid = b.catalogue.id_of(key)
        if sid is None:
            return None
        return await self._reader.series_columns(b, b.catalogue[sid],
                                                 MIN_TS if start is None else start,
                                                 MAX_TS if stop is None else stop)

    async def stream_series(self, info: SeriesInfo, bucket: str = "raw", start: int | None = None,
                            stop: int | None = None, batch_points: int | None = None):
        """The points of a series with start <= time < stop as time-ordered batches of
        (timestamps, values), reading only the blocks in the range (see
        :meth:`gateway.store.reading.StoreReader.stream`): for queries over long ranges."""
        self._check_open()
        b = self.bucket(bucket)
        async for cols in self._reader.stream(b, info, MIN_TS if start is None else int(start),
                                              MAX_TS if stop is None else int(stop), batch_points):
            yield cols

    async def fold_windows(self, infos: list[SeriesInfo], bucket: str, start: int, stop: int,
                           spec: FoldSpec, max_windows: int) -> FoldedMany:
        """Window aggregates of each series with start <= time < stop, computed in C from its
        blocks (see :meth:`gateway.store.reading.StoreReader.fold_many`): each series'
        windows, points and blocks listed; no windows where the series must be read with
        :meth:`stream_series`."""
        self._check_open()
        return await self._reader.fold_many(self.bucket(bucket), infos, int(start), int(stop),
                                            spec, max_windows)

    async def last(self, key: str, bucket: str = "raw") -> tuple[int, Any] | None:
        """The newest point (time, value) of a series, or None."""
        self._check_open()
        b = self.bucket(bucket)
        sid = b.catalogue.id_of(key)
        if sid is None:
            return None
        return await self._reader.last(b, b.catalogue[sid])

    # ------------------------------------------------------------------ replication

    async def set_replication_cursor(self, name: str, bucket: str, seq: int | None) -> None:
        """Records that stream ``name`` has sent every block of ``bucket`` up to sequence
        number ``seq`` (None removes the stream). Blocks above the lowest cursor that retention
        drops are counted as dropped before forwarding."""
        self._refuse_read_only()
        await self._replication.set_cursor(self.bucket(bucket), name, seq)

    async def forget_replication_streams(self, configured: dict[str, set[str]]) -> list[tuple[str, str]]:
        """Removes the positions of the streams (per bucket) that ``configured`` ({stream name:
        its buckets}, the daemon's configuration) no longer has, and returns them as (stream,
        bucket). Kept, a removed stream's position would keep WAL segments for it and count
        every block retention drops above it as dropped before forwarding, for ever; a stream
        configured again later starts from the oldest data, as a new one does."""
        self._refuse_read_only()
        gone = []
        for b in self.buckets.values():
            for name in sorted(b.cursors):
                if b.name not in configured.get(name, ()):
                    log.warning("replication stream %r is not configured for bucket %r any more: "
                                "its position (block %d) is removed", name, b.name, b.cursors[name])
                    await self._replication.set_cursor(b, name, None)
                    gone.append((name, b.name))
        return gone

    async def set_replication_lsn(self, name: str, bucket: str, lsn: int) -> None:
        """Records that stream ``name`` has sent every point of ``bucket``'s WAL records up to
        ``lsn`` (the write-order position, see docs/replication.md)."""
        self._refuse_read_only()
        await self._replication.set_lsn(self.bucket(bucket), name, lsn)

    def replication_lsn(self, name: str, bucket: str) -> int:
        """The write-order position stream ``name`` recorded last (0: none)."""
        return self.bucket(bucket).lsn_positions.get(name, 0)

    async def logged_upto(self, bucket: str, lsn: int):
        """[(SeriesInfo, HeadPoints)]: the points of ``bucket``'s WAL records up to ``lsn``
        that its segments still hold (what a stream at that position had sent; the WAL is
        kept for the streams' cursors)."""
        self._check_open()
        return await self._replication.logged_upto(self.bucket(bucket), lsn)

    async def blocks_since(self, bucket: str, after_seq: int, limit: int = 100) -> list[StoredBlock]:
        """Sealed blocks with a sequence number above ``after_seq``, oldest first (indexed or
        sealed since the last checkpoint)."""
        return await self._replication.blocks_since(self.bucket(bucket), after_seq, limit)

    def last_sealed_seq(self, bucket: str) -> int:
        """The sequence number of the newest block of the bucket's ring."""
        return self._replication.last_sealed_seq(self.bucket(bucket))

    async def durable_heads(self, bucket: str, measurements=None, timeout: float = 10.0):
        """[(SeriesInfo, HeadPoints)] of every non-empty head (of the given measurements), the
        newest sealed sequence number and the LSN of the last WAL record, every point
        durable: now if the heads are quiet, else as the next group commit copies them; None
        if none did within ``timeout``."""
        self._check_open()
        return await self._replication.durable_heads(self.bucket(bucket), measurements, timeout)

    # ------------------------------------------------------------------ accounting

    def stats(self, bucket: str | None = None) -> dict[str, Any]:
        """Per-bucket figures for the status page; cheap, callable from any thread. Each
        bucket's ``bytes_written_per_day`` is its own files' share; :meth:`card_writes` has
        what the whole process and the card's block device write."""
        names = [bucket] if bucket else list(self.buckets)
        return {name: bucket_stats(self.buckets[name]) for name in names}

    def wal_sync_metrics(self) -> list:
        """The WAL sync latency histogram as Prometheus metric families (empty before the
        store opens); callable from any thread."""
        commits = self._commits
        return commits.sync_seconds.collect() if commits is not None else []

    def card_writes(self) -> dict[str, Any]:
        """Bytes written a day since the store opened, by the process and by the block device
        holding the store (None where the kernel does not say)."""
        return self._card.figures() if self._card is not None else {}

    def health(self) -> dict[str, Any]:
        h = super().health()
        h["running"] = self._opened
        try:
            h["card_writes"] = self.card_writes()
            h["buckets"] = self.stats()
        except Exception as e:  # a snapshot must never take the status page down
            h["error"] = str(e)
        # Writes failing now (a full card, an I/O error): unhealthy until one succeeds again,
        # so the status page says why before any reader's write is refused.
        failing = [e for part in (self._commits_part, self._checkpoints_part) if part is not None
                   for e in part.failing()]
        if failing:
            h["healthy"] = False
            h["last_error"] = failing[0]
        return h


def _newest(batch) -> int:
    """The newest timestamp of a batch that has points."""
    bounds = batch_time_bounds(batch.c_pointer)
    assert bounds is not None
    return bounds[1]


def _made_by_open(part: _Part | None) -> _Part:
    """A part the store makes when it opens; StoreError before (or after close)."""
    if part is None:
        raise StoreError("the store is not open")
    return part
