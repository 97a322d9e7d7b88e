"""The store component: buckets of compressed blocks with a WAL, group commit and retention.

Write path: ``write(batch)`` hands the C batch to the bucket's heads on the store thread (no
per-point Python work), then waits for the group commit that logs it: one WAL record for all
points taken since the previous commit, one fdatasync, and the writer returns. A commit runs
once per ``wal_sync`` interval while writers wait (or at once with ``"always"``), and early
when ``commit_points`` points are waiting. After logging, full or old heads are sealed into
blocks appended to the bucket's ring file.

Every ``checkpoint_interval`` the ring is synced, new blocks and series go to the index in one
transaction (evicting what the ring overwrote, expiring what is older than the retention) and
WAL segments whose points are all in synced blocks are deleted.

On open: the index's checkpoint says where the ring's chain of entries stood; recovery follows
that chain as far as it continues, then replays the WAL into the heads, skipping what blocks
already hold. Damaged records and blocks are skipped and counted.
"""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
import logging
import os
import time
from array import array
from dataclasses import dataclass
from typing import Any, Mapping

from gateway import codec
from gateway.errors import CorruptBlock, StoreError
from gateway.runtime import Component
from gateway.store import catalogue
from gateway.store.bucket import TYPE_NAMES, Bucket, SeriesInfo
from gateway.store.index import BlockIndex
from gateway.store.lock import DataDirLock
from gateway.store.native import OK, RING_HEADER_SIZE, STALE, batch_point, gather64, merge_order

log = logging.getLogger("gateway.store")

_TYPECODES = {1: "d", 2: "q", 3: "Q"}
_MIN_TS, _MAX_TS = -(1 << 63), (1 << 63) - 1


class UnknownBucket(StoreError, KeyError):
    """A bucket name that the configuration does not declare."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a write stored: points taken, points refused because their series has another
    type, points refused because they are older than the bucket's retention (the store would
    drop them at once; InfluxDB refuses them too), and the problem in words."""

    points: int
    refused: int = 0
    problem: str | None = None
    too_old: int = 0


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


@dataclass(frozen=True, slots=True)
class StoredBlock:
    """A sealed block as replication reads it: its sequence number and decoded points."""

    seq: int
    series: SeriesInfo
    timestamps: array
    values: Any


INT64_MIN = -(1 << 63)


def _now_ms() -> int:
    return int(time.monotonic() * 1000)


class Store(Component):
    """The gateway's store (component name ``store``)."""

    name = "store"

    def __init__(self, data_dir: str, config, *, clock=time.time_ns) -> None:
        super().__init__()
        self.config = config
        self.path = os.path.join(data_dir, "store")
        self.clock = clock
        self.buckets: dict[str, Bucket] = {}
        self.index: BlockIndex | None = None
        self._lock = DataDirLock(os.path.join(self.path, "LOCK"))
        self._store_thread = None
        self._sync_thread = None
        self._read_thread = None
        self._commit_wanted: asyncio.Event | None = None
        self._urgent: asyncio.Event | None = None
        self._checkpoint_lock: asyncio.Lock | None = None
        self._opened = False
        self._closing = False
        sync = config.wal_sync
        self._sync_interval = 0.0 if sync == "always" else float(sync)
        self._bytes_written_at_open = 0
        self._control = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self, context=None) -> None:
        await self.open()
        await super().start(context)
        from gateway.store.control import ControlServer

        self._control = ControlServer(self)
        await self._control.start()

    async def open(self) -> "Store":
        """Opens (or creates) the store and recovers it. Raises StoreLocked when another
        process has it open."""
        if self._opened:
            return self
        os.makedirs(self.path, exist_ok=True)
        self._lock.acquire()
        try:
            await self._open_locked()
        except BaseException:
            await self._close_files()
            self._lock.release()
            raise
        self._opened = True
        self.spawn(self._commit_loop(), "commit")
        self.spawn(self._checkpoint_loop(), "checkpoint")
        return self

    async def _open_locked(self) -> None:
        loop = asyncio.get_running_loop()
        self._store_thread = concurrent.futures.ThreadPoolExecutor(1, "gateway-store")
        self._sync_thread = concurrent.futures.ThreadPoolExecutor(1, "gateway-store-sync")
        self._read_thread = concurrent.futures.ThreadPoolExecutor(1, "gateway-store-read")
        self._commit_wanted = asyncio.Event()
        self._urgent = asyncio.Event()
        self._checkpoint_lock = asyncio.Lock()
        self.index = await BlockIndex.open(os.path.join(self.path, "index.sqlite"))
        for name, bcfg in self.config.buckets.items():
            b = Bucket(name, os.path.join(self.path, "buckets", name), int(bcfg.max_size),
                       bcfg.retention.ns if bcfg.retention is not None else None,
                       self.config.head_points, int(float(self.config.head_max_age) * 1000))
            self.buckets[name] = b
            await loop.run_in_executor(self._store_thread, b.open_files_sync)
            await self._recover(b)

    async def _recover(self, b: Bucket) -> None:
        loop = asyncio.get_running_loop()
        state = b.state = await self.index.load_bucket(b.name)
        b.cursors = dict(state.cursors)
        dropped, points = await self.index.drop_beyond(state.id, b.ring.capacity)
        if dropped:
            log.warning("bucket %s: ring file shrunk to %d bytes; %d blocks (%d points) beyond "
                        "it dropped", b.name, b.ring.capacity, dropped, points)
            state.counters["evicted_blocks"] += dropped
            state.counters["evicted_points"] += points
            await self.index.refresh_totals(state)
        if self.index.created and b.ring_existed:
            await self._rebuild_index(b, state)
        elif state.series and not os.path.exists(b.series_path):
            b.file_series = [(sid, t, k) for sid, t, k, _ in state.series]  # older stores
        for sid, type_, key, sealed_lsn in state.series:
            if not b.heads.define(sid, type_, key.encode("utf-8", "surrogateescape"), sealed_lsn):
                log.error("bucket %s: catalogue entry %d (%s) conflicts with another; ignored",
                          b.name, sid, key)
                continue
        b.add_series([(sid, t, k) for sid, t, k, _ in state.series], persist=False)
        start = state.write_pos if state.write_pos >= RING_HEADER_SIZE else RING_HEADER_SIZE
        found = await loop.run_in_executor(self._store_thread, b.recover_ring_sync, start,
                                           state.next_seq)
        max_lsn = max([s[3] for s in state.series] + [0])
        for e in found:
            if e.wal_lsn:
                b.heads.note_sealed(e.series_id, e.wal_lsn)
                max_lsn = max(max_lsn, e.wal_lsn)
            h = b.heads.ptr
            h.max_series_id = max(h.max_series_id, e.series_id)
        b.absorb(found, [])
        if found:
            log.info("bucket %s: %d blocks found in the ring after the last checkpoint",
                     b.name, len(found))
        h = b.heads.ptr
        h.next_lsn = max(h.next_lsn, max_lsn + 1,
                         (b.segments[-1][0] if b.segments else 0))
        replay = await loop.run_in_executor(self._store_thread, b.replay_sync, _now_ms())
        counters = b.heads.counters()
        b.counters["wal_corrupt_records"] += counters["corrupt_records"]
        b.counters["wal_points_lost"] += counters["points_lost"]
        b.counters["wal_bad_segments"] += replay["bad_segments"]
        if counters["corrupt_records"] or counters["points_lost"] or replay["bad_segments"]:
            log.error("bucket %s: WAL replay skipped %d damaged records (%d bytes) and %d points "
                      "of unknown series", b.name, counters["corrupt_records"],
                      counters["corrupt_bytes"], counters["points_lost"])
        if counters["points_replayed"]:
            log.info("bucket %s: %d points replayed from %d WAL segments", b.name,
                     counters["points_replayed"], replay["segments"])
        b.unlogged_points = 0
        await loop.run_in_executor(self._store_thread, b.new_segment_sync)
        # Persist what recovery found (and seal what replay filled) before taking writes.
        await self._checkpoint(b)

    async def _rebuild_index(self, b: Bucket, state) -> None:
        """The index is new but the ring is not: re-index the ring from a full scan, with the
        series file for the keys."""
        loop = asyncio.get_running_loop()
        series, damaged = await loop.run_in_executor(self._store_thread, catalogue.read,
                                                     b.series_path)
        known = {}
        for sid, type_, key in series:
            known.setdefault(sid, (sid, type_, key))
        found = await loop.run_in_executor(self._store_thread, b.rebuild_sync)
        sealed: dict[int, int] = {}
        for e in found:
            sealed[e.series_id] = max(sealed.get(e.series_id, 0), e.wal_lsn)
        state.series = [(sid, t, k, sealed.get(sid, 0)) for sid, t, k in known.values()]
        b.pending_series.extend(known.values())
        cursors = await loop.run_in_executor(self._store_thread, b.cursor_file.load)
        for name, seq in cursors.items():
            await self.index.set_cursor(name, state.id, seq)
        state.cursors = cursors
        b.cursors = dict(cursors)
        b.cursors_saved = dict(cursors)
        state.write_pos, state.next_seq = b.ring.position
        if found:
            b.chain_start = found[0].offset  # the rebuilt run evicts nothing before it
        b.absorb(found, [])
        for e in found:
            if e.series_id not in known:
                b.counters["blocks_of_unknown_series"] += 1
        log.warning("bucket %s: block index rebuilt from the ring: %d blocks, %d series "
                    "(%d damaged series records), %d replication cursors as of the last "
                    "checkpoint", b.name, len(found), len(known), damaged, len(cursors))

    async def stop(self) -> None:
        if self._control is not None:
            await self._control.stop()
            self._control = None
        await self.close()
        await super().stop()

    async def close(self) -> None:
        """Commits what is waiting, checkpoints, closes the files, releases the lock. Safe twice."""
        if not self._opened or self._closing:
            return
        self._closing = True
        try:
            for b in self.buckets.values():
                await self._commit_bucket(b)
            for b in self.buckets.values():
                try:
                    await self._checkpoint(b)
                except StoreError as e:
                    log.error("bucket %s: final checkpoint failed: %s", b.name, e)
        finally:
            for t in list(self._tasks):
                t.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            for b in self.buckets.values():
                for _, fut in b.waiters:
                    if not fut.done():
                        fut.set_exception(StoreError("the store closed before the write was durable"))
                b.waiters.clear()
            await self._close_files()
            self._lock.release()
            self._opened = False

    async def _close_files(self) -> None:
        if self._store_thread is not None:
            loop = asyncio.get_running_loop()
            for b in self.buckets.values():
                await loop.run_in_executor(self._store_thread, b.close_sync)
        if self.index is not None:
            await self.index.close()
            self.index = None
        for ex in (self._store_thread, self._sync_thread, self._read_thread):
            if ex is not None:
                ex.shutdown(wait=True)
        self._store_thread = self._sync_thread = self._read_thread = None

    async def __aenter__(self) -> "Store":
        return await self.open()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # ------------------------------------------------------------------ writing

    def bucket(self, name: str) -> Bucket:
        try:
            return self.buckets[name]
        except KeyError:
            raise UnknownBucket(f"unknown bucket {name!r} (configured: "
                                f"{', '.join(sorted(self.buckets))})") from None

    def _check_open(self) -> None:
        if not self._opened or self._closing:
            raise StoreError("the store is not open")

    async def write(self, batch, bucket: str = "raw") -> WriteResult:
        """Stores the batch; returns once it is durable (in the WAL, synced). Raises StoreError
        (nothing of the batch stored) when the WAL cannot be written or synced."""
        self._check_open()
        b = self.bucket(bucket)
        if len(batch) == 0:
            return WriteResult(0)
        loop = asyncio.get_running_loop()
        ptr = batch.c_pointer
        del batch  # the caller may let it go while we wait: the heads hold copies
        min_ts = self.clock() - b.retention_ns if b.retention_ns else INT64_MIN
        taken = b.try_ingest(ptr, _now_ms(), min_ts)
        if taken is None:  # a commit holds the heads: queue behind it on the store thread
            taken = await loop.run_in_executor(self._store_thread, b.ingest_sync, ptr, _now_ms(),
                                               min_ts)
        gen, taken, refused, last_conflict, too_old, created, unlogged = taken
        problems = []
        if refused:
            b.counters["type_conflicts"] += refused
            problems.append(self._conflict_message(b, ptr, last_conflict, refused))
            log.warning("bucket %s: %s", b.name, problems[-1])
        if too_old:
            b.counters["too_old"] += too_old
            problems.append(f"{too_old} point(s) refused: older than the retention of bucket "
                            f"{b.name!r} ({b.retention_ns // 1_000_000_000} s)")
            self._warn_too_old(b, problems[-1])
        problem = "; ".join(problems) or None
        del ptr
        if created:
            b.add_series(created)
        b.unlogged_points = unlogged
        if taken:
            await self._wait_durable(b, gen, unlogged)
        return WriteResult(taken, refused, problem, too_old)

    def _warn_too_old(self, b: Bucket, problem: str) -> None:
        # A device with a wrong clock sends old points all the time: one line a minute.
        now = time.monotonic()
        if now - b.too_old_logged_at >= 60:
            b.too_old_logged_at = now
            log.warning("bucket %s: %s (counted as too_old; check the sender's clock)", b.name, problem)

    def _conflict_message(self, b: Bucket, ptr, index: int, refused: int) -> str:
        raw_key, type_ = batch_point(ptr, index)
        key = raw_key.decode("utf-8", "replace")
        sid = b.by_key.get(key)
        have = b.catalogue[sid].type_name if sid else "another type"
        return (f"{refused} point(s) refused: field type conflict (series {key!r} is "
                f"{have}, got {TYPE_NAMES.get(type_, type_)})")

    async def _wait_durable(self, b: Bucket, gen: int, unlogged: int) -> None:
        if gen <= b.durable_generation:
            return
        for hi, error in b.outcomes:
            if gen <= hi and error is not None:
                raise error
        fut = asyncio.get_running_loop().create_future()
        b.waiters.append((gen, fut))
        self._commit_wanted.set()
        if self._sync_interval == 0 or unlogged >= self.config.commit_points:
            self._urgent.set()
        await fut

    async def _commit_loop(self) -> None:
        """Runs group commits: once per wal_sync interval while writers wait, at once when
        commit_points points wait; and, while that load lasts (each commit still finds at
        least a quarter of commit_points waiting), back to back, each covering what arrived
        during the one before, so writers never sit out an interval behind a busy pipeline."""
        last = time.monotonic()
        loaded = False
        while True:
            await self._commit_wanted.wait()
            delay = last + self._sync_interval - time.monotonic()
            if delay > 0 and not loaded and not self._urgent.is_set():
                try:
                    await asyncio.wait_for(self._urgent.wait(), delay)
                except asyncio.TimeoutError:
                    pass
            urgent = self._urgent.is_set()
            self._commit_wanted.clear()
            self._urgent.clear()
            last = time.monotonic()
            waiting = sum(b.unlogged_points for b in self.buckets.values())
            loaded = urgent or (loaded and waiting * 4 >= self.config.commit_points)
            for b in self.buckets.values():
                if b.waiters:
                    await self._commit_bucket(b)

    async def _commit_bucket(self, b: Bucket) -> None:
        """One group commit of a bucket: log, seal, sync; then the writers are answered.
        Commits of a bucket never overlap (flush and close commit too): a segment switch must
        not close the file another commit is syncing."""
        async with b.commit_lock:
            await self._commit_bucket_locked(b)

    async def _commit_bucket_locked(self, b: Bucket) -> None:
        loop = asyncio.get_running_loop()
        gen, log_error, seal_error, direct, sealed, created = await loop.run_in_executor(
            self._store_thread, b.log_and_seal_sync, _now_ms(), self.config.wal_segment_size)
        b.absorb(sealed, created)
        if seal_error is not None:
            b.counters["seal_errors"] += 1
            log.error("bucket %s: sealing blocks failed (retried later): %s", b.name, seal_error)
        error = log_error
        if error is None:
            try:
                await loop.run_in_executor(self._sync_thread, b.wal.sync)
                if direct:
                    await loop.run_in_executor(self._sync_thread, b.ring.sync)
            except StoreError as e:
                error = e
        if error is not None:
            b.counters["commit_errors"] += 1
            log.error("bucket %s: write failed: %s", b.name, error)
            error = StoreError(f"bucket {b.name}: write not stored: {error}")
        else:
            b.durable_generation = max(b.durable_generation, gen)
        b.outcomes.append((gen, error))
        keep = []
        for g, fut in b.waiters:
            if g > gen:
                keep.append((g, fut))
            elif not fut.done():
                if error is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(error)
        b.waiters = keep
        b.unlogged_points = 0
        if error is None and b.wal.size >= self.config.wal_segment_size:
            try:
                await loop.run_in_executor(self._store_thread, b.new_segment_sync)
            except StoreError as e:
                log.error("bucket %s: cannot start a new WAL segment: %s", b.name, e)
        elif error is not None:
            # After a failed write or sync the segment's tail is in doubt: start afresh.
            try:
                await loop.run_in_executor(self._store_thread, b.new_segment_sync)
            except StoreError:
                pass
        if b.waiters:
            self._commit_wanted.set()

    async def flush(self, bucket: str | None = None, seal: bool = False) -> None:
        """Commits and checkpoints now; with seal, every head becomes a block first (so that
        all data is in the ring and visible to block readers such as replication)."""
        self._check_open()
        for b in ([self.bucket(bucket)] if bucket else list(self.buckets.values())):
            await self._commit_bucket(b)
            await self._checkpoint(b, force_seal=seal)

    # ------------------------------------------------------------------ checkpoints

    async def _save_cursors(self, b: Bucket) -> None:
        """Writes the cursor file when the cursors changed since it was written."""
        loop = asyncio.get_running_loop()
        if b.cursors_saved is None:
            b.cursors_saved = await loop.run_in_executor(self._store_thread, b.cursor_file.load)
        if b.cursors == b.cursors_saved:
            return
        cursors = dict(b.cursors)
        try:
            await loop.run_in_executor(self._store_thread, b.cursor_file.save, cursors)
        except OSError as e:
            # Only an index rebuild reads the file: the checkpoint goes on, the next one retries.
            log.error("bucket %s: cannot write %s: %s", b.name, b.cursor_file.path, e)
            return
        b.cursors_saved = cursors

    async def _checkpoint_loop(self) -> None:
        interval = float(self.config.checkpoint_interval)
        while True:
            await asyncio.sleep(interval)
            for b in self.buckets.values():
                try:
                    await self._checkpoint(b)
                except StoreError as e:
                    b.counters["checkpoint_errors"] += 1
                    log.error("bucket %s: checkpoint failed (retried): %s", b.name, e)

    async def _checkpoint(self, b: Bucket, force_seal: bool = False) -> None:
        loop = asyncio.get_running_loop()
        async with self._checkpoint_lock:
            sealed, created, min_lsn, seal_error = await loop.run_in_executor(
                self._store_thread, b.seal_due_sync, _now_ms(), force_seal)
            b.absorb(sealed, created)
            if seal_error is not None:
                b.counters["seal_errors"] += 1
                log.error("bucket %s: sealing blocks failed (retried later): %s", b.name, seal_error)
            await loop.run_in_executor(self._sync_thread, b.ring.sync)
            pending, b.pending = b.pending, []
            new_series, b.pending_series = b.pending_series, []
            sealed_lsn, b.pending_sealed = b.pending_sealed, {}
            file_series, b.file_series = b.file_series, []
            if file_series:
                try:
                    await loop.run_in_executor(self._store_thread, b.append_series_file_sync,
                                               file_series)
                except OSError as e:
                    b.file_series[:0] = file_series
                    b.pending[:0] = pending
                    b.pending_series[:0] = new_series
                    b.pending_sealed.update(sealed_lsn)
                    raise StoreError(f"cannot write series file {b.series_path}: {e}") from e
            await self._save_cursors(b)
            corrupt, b.corrupt_seqs = sorted(b.corrupt_seqs), set()
            state = b.state
            position = ((pending[-1].offset + pending[-1].length, pending[-1].seq + 1) if pending
                        else (state.write_pos, state.next_seq))
            expire = self.clock() - b.retention_ns if b.retention_ns else None
            if expire is not None and (state.first_block_end is None
                                       or expire <= state.first_block_end):
                expire = None  # no block ends before the cutoff yet
            if not (pending or new_series or sealed_lsn or corrupt or expire is not None):
                # Nothing to record: leave the index file alone (no page or journal writes).
                await loop.run_in_executor(self._store_thread, b.delete_segments_sync, min_lsn)
                return
            previous_pos = max(state.write_pos, RING_HEADER_SIZE)
            if b.chain_start is not None and pending:
                previous_pos, b.chain_start = b.chain_start, None
            try:
                res = await self.index.commit(state.id, pending, new_series, sealed_lsn, position,
                                              previous_pos, b.ring.capacity, expire,
                                              b.forwarded_seq(), corrupt)
            except StoreError:
                b.pending[:0] = pending
                b.pending_series[:0] = new_series
                for sid, lsn in sealed_lsn.items():
                    b.pending_sealed[sid] = max(lsn, b.pending_sealed.get(sid, 0))
                b.corrupt_seqs.update(corrupt)
                raise
            state.write_pos, state.next_seq = position
            for name in ("evicted_blocks", "evicted_points", "expired_blocks", "expired_points",
                         "dropped_unforwarded"):
                state.counters[name] += getattr(res, name)
            state.counters["corrupt_blocks"] += len(corrupt)
            if res.evicted_blocks or res.expired_blocks or res.added_blocks or corrupt:
                await self.index.refresh_totals(state)
            if res.dropped_unforwarded:
                log.warning("bucket %s: %d points dropped before they were forwarded",
                            b.name, res.dropped_unforwarded)
            await loop.run_in_executor(self._store_thread, b.delete_segments_sync, min_lsn)

    # ------------------------------------------------------------------ reading

    def series(self, bucket: str = "raw", measurement: str | None = None,
               tags: Mapping[str, str] | None = None, field: str | None = None) -> list[SeriesInfo]:
        """The catalogue's series matching the predicate, by key."""
        b = self.bucket(bucket)
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
        lo = _MIN_TS if start is None else int(start)
        hi = _MAX_TS if stop is None else int(stop)
        out = []
        for info in self.series(bucket, measurement, tags, field):
            cols = await self._scan_series(self.buckets[bucket], info, lo, hi)
            if cols is not None:
                out.append(cols)
        return out

    async def scan_series(self, key: str, bucket: str = "raw", start: int | None = None,
                          stop: int | None = None) -> SeriesColumns | None:
        self._check_open()
        b = self.bucket(bucket)
        sid = b.by_key.get(key)
        if sid is None:
            return None
        return await self._scan_series(b, b.catalogue[sid], _MIN_TS if start is None else start,
                                       _MAX_TS if stop is None else stop)

    async def last(self, key: str, bucket: str = "raw") -> tuple[int, Any] | None:
        """The newest point (time, value) of a series, or None."""
        self._check_open()
        b = self.bucket(bucket)
        sid = b.by_key.get(key)
        if sid is None:
            return None
        newest = await self.index.newest_block_ts(b.state.id, sid)
        pend = [e.max_ts for e in b.pending if e.series_id == sid]
        candidates = [t for t in [newest, *pend] if t is not None]
        loop = asyncio.get_running_loop()
        ts, _, _ = await loop.run_in_executor(self._store_thread, b.head_sync, sid)
        if ts:
            candidates.append(max(ts))
        if not candidates:
            return None
        cols = await self._scan_series(b, b.catalogue[sid], max(candidates), _MAX_TS)
        if cols is None or not len(cols):
            return None
        return cols.timestamps[-1], cols.values[-1]

    async def _scan_series(self, b: Bucket, info: SeriesInfo, lo: int, hi: int) -> SeriesColumns | None:
        loop = asyncio.get_running_loop()
        rows = await self.index.blocks(b.state.id, info.id, lo, hi)
        seen = {r.seq for r in rows}
        refs = [(r.seq, r.offset, r.length) for r in rows]
        refs += [(e.seq, e.offset, e.length) for e in list(b.pending)
                 if e.series_id == info.id and e.max_ts >= lo and e.min_ts < hi and e.seq not in seen]
        refs.sort()
        blocks = await loop.run_in_executor(self._read_thread, self._read_blocks, b, refs)
        head_ts, head_raw, head_strings = await loop.run_in_executor(
            self._store_thread, b.head_sync, info.id)
        return self._merge(info, blocks, head_ts, head_raw, head_strings, lo, hi)

    def _read_blocks(self, b: Bucket, refs) -> list:
        out = []
        for seq, offset, length in refs:
            status, block = b.ring.read(offset, length, seq)
            if status == STALE:
                continue  # overwritten since the index was read: evicted
            if status == OK:
                try:
                    out.append(codec.decode(block))
                    continue
                except CorruptBlock as e:
                    why = str(e)
            else:
                why = "entry checksum mismatch"
            if seq not in b.corrupt_seqs:
                b.corrupt_seqs.add(seq)
                log.error("bucket %s: block %d at offset %d is damaged (%s); skipped",
                          b.name, seq, offset, why)
        return out

    @staticmethod
    def _merge(info: SeriesInfo, blocks, head_ts, head_raw, head_strings, lo, hi):
        type_ = info.type
        parts_ts = [ts for ts, _ in blocks]
        parts_v = [v for _, v in blocks]
        if len(head_ts):
            parts_ts.append(head_ts)
            if type_ == 5:
                parts_v.append(head_strings)
            elif type_ == 4:
                parts_v.append(array("B", head_raw.tobytes()[::8]) if head_raw else array("B"))
            else:
                parts_v.append(array(_TYPECODES[type_], head_raw.tobytes()))
        if not parts_ts:
            return None
        ts = array("q")
        for p in parts_ts:
            ts.extend(p)
        if type_ == 5:
            values = [v for p in parts_v for v in p]
        else:
            values = array("B" if type_ == 4 else _TYPECODES[type_])
            for p in parts_v:
                values.extend(p)
        # Blocks come oldest write first and the head last, so the last write of a timestamp
        # wins (a redelivered point replaces the earlier copy).
        order = merge_order(ts)
        ts = gather64(ts, order, "q")
        if type_ in _TYPECODES:
            values = gather64(values, order, _TYPECODES[type_])
        elif type_ == 4:
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

    # ------------------------------------------------------------------ replication hooks

    async def set_replication_cursor(self, name: str, bucket: str, seq: int | None) -> None:
        """Records that stream ``name`` has sent every block of ``bucket`` up to sequence
        number ``seq`` (None removes the stream). Blocks above the lowest cursor that retention
        drops are counted as dropped before forwarding."""
        b = self.bucket(bucket)
        await self.index.set_cursor(name, b.state.id, seq)
        if seq is None:
            b.cursors.pop(name, None)
        else:
            b.cursors[name] = seq

    async def blocks_since(self, bucket: str, after_seq: int, limit: int = 100) -> list[StoredBlock]:
        """Sealed blocks with a sequence number above ``after_seq``, oldest first."""
        b = self.bucket(bucket)
        rows = await self.index.blocks_after(b.state.id, after_seq, limit)
        out = []
        loop = asyncio.get_running_loop()
        for r in rows:
            got = await loop.run_in_executor(self._read_thread, self._read_blocks, b,
                                             [(r.seq, r.offset, r.length)])
            info = b.catalogue.get(r.series)
            if got and info is not None:
                out.append(StoredBlock(r.seq, info, got[0][0], got[0][1]))
        return out

    # ------------------------------------------------------------------ accounting

    def stats(self, bucket: str | None = None) -> dict[str, Any]:
        """Per-bucket figures for the status page; cheap, callable from any thread."""
        names = [bucket] if bucket else list(self.buckets)
        return {name: self._bucket_stats(self.buckets[name]) for name in names}

    def _bucket_stats(self, b: Bucket) -> dict[str, Any]:
        state = b.state
        heads = b.heads.counters() if b.heads is not None and b.heads._h is not None else {}
        live_bytes = state.live_bytes if state else 0
        block_points = state.live_points if state else 0
        head_points = heads.get("head_points_total", 0)
        pending_points = sum(e.count for e in list(b.pending))
        pending_bytes = sum(e.length for e in list(b.pending))
        counters = dict(state.counters) if state else {}
        return {
            "max_size": b.max_size,
            "retention_s": b.retention_ns / 1e9 if b.retention_ns else None,
            "used_bytes": live_bytes + pending_bytes,
            "fill": (live_bytes + pending_bytes) / b.data_capacity,
            "blocks": (state.live_blocks if state else 0) + len(b.pending),
            "points": block_points + pending_points + head_points,
            "points_in_blocks": block_points + pending_points,
            "points_in_heads": head_points,
            "bytes_per_point": ((live_bytes + pending_bytes) / (block_points + pending_points)
                                if block_points + pending_points else None),
            "oldest": state.oldest if state else None,
            "newest": state.newest if state else None,
            "series": len(b.catalogue),
            "wal_bytes": b.wal_size(),
            "wal_segments": len(b.segments),
            "bytes_written": ((b.wal.bytes_written if b.wal else 0)
                              + (b.ring.bytes_written if b.ring else 0)),
            "points_written": heads.get("points_ingested", 0),
            "type_conflicts": b.counters["type_conflicts"],
            "too_old": b.counters["too_old"],
            "wal_corrupt_records": b.counters["wal_corrupt_records"],
            "wal_points_lost": b.counters["wal_points_lost"],
            "corrupt_blocks": counters.get("corrupt_blocks", 0) + len(b.corrupt_seqs),
            "evicted_blocks": counters.get("evicted_blocks", 0),
            "evicted_points": counters.get("evicted_points", 0),
            "expired_blocks": counters.get("expired_blocks", 0),
            "expired_points": counters.get("expired_points", 0),
            "dropped_before_forwarding": counters.get("dropped_unforwarded", 0),
            "commit_errors": b.counters["commit_errors"],
            "seal_errors": b.counters["seal_errors"],
        }

    def health(self) -> dict[str, Any]:
        h = super().health()
        h["running"] = self._opened
        try:
            h["buckets"] = self.stats()
        except Exception as e:  # a snapshot must never take the status page down
            h["error"] = str(e)
        return h

