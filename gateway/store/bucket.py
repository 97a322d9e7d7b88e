"""One bucket of the store: its ring file, WAL segments, heads, catalogue and counters.

Methods named ``*_on_thread`` do file I/O or touch the C heads and run on the store thread
(:mod:`gateway.store.threads`); the C heads are not thread-safe, so every call on them holds
``lock``. They return named results (:class:`Ingested`, :class:`Logged`, :class:`Sealed`,
:class:`HeadPoints`). Taking a batch (pure in-memory work) may also run on the event loop thread
when the lock is free (:meth:`Bucket.try_ingest`), which spares a thread hop per write.
Everything else runs on the event loop thread, which alone mutates the Python-side state: the
catalogue, the blocks and series not yet in the index (:class:`Unindexed`, taken by a checkpoint
and put back when it fails), and the writers waiting for a commit.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import logging
import os
import re
import threading
import time
from array import array
from dataclasses import dataclass, field

from gateway.countfile import CountFile
from gateway.durable import sync_directory
from gateway.store import catalogue
from gateway.store.index import BucketState
from gateway.store.position_file import PositionFile
from gateway.store.series_table import SeriesTable
from gateway.store.native import (RING_HEADER_SIZE, Heads, RingEntry, RingFile, StoreCorrupt,
                                  StoreIOError, WriteAheadLog, segment_info)

log = logging.getLogger("gateway.store")

_SEGMENT_NAME = re.compile(r"^([0-9a-f]{16})\.wal$")
#: A segment filled faster than this (bulk ingest: large commits) is followed by one that grows
#: as records are appended: its zeros would double what the WAL writes, while the size changes
#: they save cost little next to commits that large. Slower segments are preallocated.
QUICK_SEGMENT_S = 60.0
#: WAL segments kept for replication streams beyond what the heads need (so that a restarted
#: stream knows exactly which points it had sent from heads, see docs/replication.md), at most.
REPLICATION_KEPT_SEGMENTS = 8
#: What replay found wrong with the WAL, kept across restarts in the bucket's damage file.
WAL_DAMAGE = ("wal_corrupt_records", "wal_points_lost", "wal_bad_segments", "wal_lsn_gaps",
              "wal_records_missing")


def monotonic_ms() -> int:
    """The clock of head ages (``head_max_age``): monotonic, in milliseconds."""
    return int(time.monotonic() * 1000)


#: A series created by the heads: (series id, type code, key).
NewSeries = tuple[int, int, str]


@dataclass(frozen=True, slots=True)
class Ingested:
    """What taking a batch into the heads did."""

    generation: int          # the batch's number: durable once a commit covers it
    taken: int               # points taken
    type_conflicts: int      # points refused: their series has another type
    last_conflict: int       # index in the batch of the last of those
    too_old: int             # points refused: older than the retention
    created: list[NewSeries]
    unlogged: int            # points in the heads not yet in the WAL
    series_limited: int = 0  # points refused: their new series would pass max_series
    last_limited: int = -1   # index in the batch of the last of those


@dataclass(frozen=True, slots=True)
class Logged:
    """The first half of a group commit: points logged (or not), heads sealed."""

    generation: int               # the last batch the commit covers
    log_error: Exception | None   # the WAL write failed: the batches up to generation fail
    seal_error: Exception | None  # sealing failed: the heads kept their points, retried later
    sealed_directly: int          # full heads sealed into the ring instead of the WAL
    sealed: list[RingEntry]
    created: list[NewSeries]


@dataclass(frozen=True, slots=True)
class Sealed:
    """Heads sealed at a checkpoint."""

    sealed: list[RingEntry]
    created: list[NewSeries]
    min_lsn: int                  # the oldest WAL record still needed by a head
    last_seq: int                 # the newest block in the ring when min_lsn was taken
    error: Exception | None


@dataclass(frozen=True, slots=True)
class HeadPoints:
    """A copy of a series' head: raw 64-bit values, or strings for a string series."""

    timestamps: array
    raw: array | None
    strings: list[str] | None


#: The copy of an empty head (shared: readers do not change a copy).
_EMPTY_HEAD = HeadPoints(array("q"), array("Q"), None)


@dataclass(slots=True)
class Unindexed:
    """What a checkpoint takes from a bucket to write to the index (and to the series file);
    :meth:`Bucket.restore` puts back what it did not write."""

    blocks: list[RingEntry]
    series: array            # ids ('I') of series not yet in the index
    sealed_lsn: dict[int, int]
    corrupt: list[int]
    file_series: array = field(default_factory=lambda: array("I"))  # ... in the series file

    def __bool__(self) -> bool:
        return bool(self.blocks or self.series or self.sealed_lsn or self.corrupt)


class Bucket:
    def __init__(self, name: str, path: str, max_size: int, retention_ns: int | None,
                 head_points: int, head_max_age_ms: int, max_series: int = 0,
                 wal_segment_size: int = 256 << 10) -> None:
        self.name = name
        self.max_series = max_series   # 0: no limit
        self.path = path
        self.wal_dir = os.path.join(path, "wal")
        self.wal_segment_size = wal_segment_size
        self.max_size = max_size
        self.retention_ns = retention_ns
        self.head_points = head_points
        self.head_max_age_ms = head_max_age_ms
        # See the properties of the same names: set when the bucket opens.
        self._ring: RingFile | None = None
        self._wal: WriteAheadLog | None = None
        self._heads: Heads | None = None
        self._state: BucketState | None = None
        self.catalogue = SeriesTable()
        # Waiting for durability: (generation, future); outcomes of recent commits.
        self.generation = 0          # store thread: batches taken so far
        self.durable_generation = 0
        self.waiters: list[tuple[int, asyncio.Future]] = []
        # Replication: a copy of the heads taken by the next commit, handed out once durable.
        self.head_copy_wanted = False
        # (generation, heads, newest sealed seq, LSN of the last record logged)
        self.head_copy: tuple[int, list[tuple[int, HeadPoints]], int, int] | None = None
        self.head_copy_waiters: list[asyncio.Future] = []
        self.outcomes: collections.deque = collections.deque(maxlen=64)
        self.unlogged_points = 0
        # Points nobody waits for (local readers): when the oldest arrived (time.monotonic())
        # and the last batch of them, until a commit logs them.
        self.unwaited_since: float | None = None
        self.unwaited_generation = 0
        # WAL bytes a point costs, from recent commits: how many waiting points fill a page.
        self.wal_bytes_per_point = 1.0
        self.replayed_lsn = 0   # the last WAL record replay found
        self.segment_started: float | None = None   # time.monotonic() the current one began
        self.opened_at = time.monotonic()
        # Damage found by replay, kept across restarts (per segment, so that damage still in a
        # segment is not counted again at the next open).
        self.damage_file = CountFile(os.path.join(path, "wal-damage.json"), "WAL damage counters",
                                     log)
        # Not yet in the index (loop thread).
        self.pending: list[RingEntry] = []
        # Taken from pending by the running checkpoint and not yet committed to the index:
        # block readers look here too, else those blocks are nowhere for the moment.
        self.indexing: list[RingEntry] = []
        # The blocks sealed on the store thread (lock held) that the index may not hold yet:
        # a copy of the heads comes with them (heads_on_thread), so that a reader sees each
        # point in the copy or in a block it knows of, even when a seal falls between the
        # reader's look at pending and its copy of the heads (the loop takes the seal's
        # blocks into pending only after the seal).
        self.sealed_unindexed: list[RingEntry] = []
        # Ids of series not yet in the index and in the series file (their keys are in the
        # catalogue: a burst of new series costs 4 bytes each here).
        self.pending_series = array("I")
        self.file_series = array("I")
        self.series_path = os.path.join(path, "series")
        # The replication cursors, also kept beside the ring (written at checkpoints when they
        # changed) so that an index rebuilt from the ring does not restart every stream at zero.
        self.cursor_file = CountFile(os.path.join(path, "cursors.json"), "replication cursors", log)
        self.cursors_saved: dict[str, int] | None = None   # what cursor_file holds, once known
        self.cursors_indexed: dict[str, int] = {}   # what the index holds (loaded at open)
        # Each stream's position as it goes (block cursor and WAL LSN), written as it moves.
        self.position_file = PositionFile(os.path.join(path, "replication.pos"), log)
        # Per stream, the LSN up to which every point of the WAL has been acknowledged.
        self.lsn_positions: dict[str, int] = {}
        # (min_lsn, newest block) at recent checkpoints: the WAL below such a min_lsn is in
        # blocks up to that block; once every stream is past the block, no stream needs it.
        self.wal_samples: collections.deque[tuple[int, int]] = collections.deque()
        self.wal_floor = 0   # the WAL below this LSN no stream needs
        self.ring_existed = False
        self.chain_start: int | None = None   # set by an index rebuild, see Checkpointer
        self.pending_sealed: dict[int, int] = {}
        self.corrupt_seqs: set[int] = set()
        # Index rows that led to no entry of theirs, not by an overwrite: the index is checked
        # against the ring (see Checkpointer.repair_index).
        self.index_suspects: set[int] = set()
        # The ring's bytes_written when the checkpoint position was taken: a reader tells from
        # it whether the ring has gone a whole lap since.
        self.written_at_checkpoint = 0
        self.segments: list[tuple[int, str]] = []    # (first LSN, path), oldest first
        self.counters: collections.Counter[str] = collections.Counter()
        self.too_old_logged_at = -1e9   # time.monotonic() of the last warning about old points
        self.series_limit_logged_at = -1e9
        self.cursors: dict[str, int] = {}
        self.lock = threading.Lock()
        self.watching = False   # the heads keep some series' newest points (Store.last)
        self.commit_lock = asyncio.Lock()

    # ------------------------------------------------------------------ open parts

    # The ring, WAL and heads are made by open_files_on_thread, the state comes from the index
    # when the store opens the bucket; nothing uses a bucket before that, so reading one earlier
    # is a bug, not a state to handle (opened_parts() is for the code that runs either way).
    @property
    def ring(self) -> RingFile:
        assert self._ring is not None, f"bucket {self.name}: ring read before it was opened"
        return self._ring

    @ring.setter
    def ring(self, ring: RingFile) -> None:
        self._ring = ring

    @property
    def wal(self) -> WriteAheadLog:
        assert self._wal is not None, f"bucket {self.name}: WAL read before it was opened"
        return self._wal

    @wal.setter
    def wal(self, wal: WriteAheadLog) -> None:
        self._wal = wal

    @property
    def heads(self) -> Heads:
        assert self._heads is not None, f"bucket {self.name}: heads read before they were made"
        return self._heads

    @heads.setter
    def heads(self, heads: Heads) -> None:
        self._heads = heads

    @property
    def state(self) -> BucketState:
        assert self._state is not None, f"bucket {self.name}: state read before it was loaded"
        return self._state

    @state.setter
    def state(self, state: BucketState) -> None:
        self._state = state

    def opened_parts(self) -> tuple[RingFile | None, WriteAheadLog | None, Heads | None,
                                    BucketState | None]:
        """(ring, WAL, heads, state), each None until opened: for statistics and closing."""
        return self._ring, self._wal, self._heads, self._state

    # ------------------------------------------------------------------ store thread

    def open_files_on_thread(self, read_only: bool = False) -> bool:
        """Opens the ring (creating it, with the configured size and retention, unless
        read-only), lists the WAL segments and makes the heads. False: read-only and the
        bucket has no ring file (it holds no data)."""
        ring_path = os.path.join(self.path, "ring")
        self.ring_existed = os.path.exists(ring_path) and os.path.getsize(ring_path) > 0
        if self.ring_existed:
            self.ring = RingFile.open(ring_path, read_only)
        elif read_only:
            return False
        else:
            os.makedirs(self.wal_dir, exist_ok=True)
            if os.path.exists(ring_path):
                os.unlink(ring_path)  # left empty by a cut while it was created
            self.ring = RingFile.create(ring_path, self.max_size, self.retention_ns)
            # The new names must survive a power cut: the ring and each new directory.
            buckets = os.path.dirname(self.path)
            for d in (self.path, buckets, os.path.dirname(buckets)):
                sync_directory(d)
        self.wal = WriteAheadLog()
        self.heads = Heads(self.head_points, self.head_max_age_ms)
        segments = []
        for name in (os.listdir(self.wal_dir) if os.path.isdir(self.wal_dir) else []):
            m = _SEGMENT_NAME.match(name)
            if m:
                segments.append((int(m.group(1), 16), os.path.join(self.wal_dir, name)))
            elif name.endswith(".wal.tmp") and not read_only:
                os.unlink(os.path.join(self.wal_dir, name))
        self.segments = sorted(segments)
        return True

    def recover_ring_on_thread(self, write_pos: int, next_seq: int) -> list[RingEntry]:
        """Entries written after the index's checkpoint: the chain of sequence numbers that
        continues from it (a torn or stale entry ends the chain)."""
        found = []
        pos, seq = write_pos, next_seq
        while True:
            e = self.ring.scan_next(pos, seq)
            if e is None:
                break
            found.append(e)
            pos, seq = e.offset + e.length, e.seq + 1
        self.ring.set_position(pos, seq)
        return found

    def scan_ring_on_thread(self) -> dict[int, RingEntry]:
        """Full scan of the ring: every valid entry, by sequence number."""
        found = {}
        pos = RING_HEADER_SIZE
        while True:
            e = self.ring.find_next(pos)
            if e is None:
                break
            found[e.seq] = e
            pos = e.offset + e.length
        return found

    def rebuild_on_thread(self) -> list[RingEntry]:
        """Full scan of the ring for a lost index: the newest run of consecutive sequence
        numbers (older entries are evicted, or were cut off by the wrap that left them)."""
        found = self.scan_ring_on_thread()
        if not found:
            return []
        seq = max(found)
        run = []
        while seq in found:
            run.append(found[seq])
            seq -= 1
        run.reverse()
        last = run[-1]
        self.ring.set_position(last.offset + last.length, last.seq + 1)
        return run

    def append_series_file_on_thread(self, series_ids: array) -> None:
        catalogue.append(self.series_path, self.catalogue.rows(series_ids))

    def replay_on_thread(self, now_ms: int) -> dict:
        """Replays every WAL segment in order into the heads. Returns the number of segments
        read and, per segment (first LSN), the damage found in it (names of WAL_DAMAGE)."""
        found: dict[int, collections.Counter] = {}
        read = 0
        last_lsn: int | None = 0   # the last record of the segments so far; None: not known
        wall = time.time()
        for first_lsn, path in self.segments:
            damage = found[first_lsn] = collections.Counter()
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError as e:
                log.error("bucket %s: cannot read WAL segment %s: %s", self.name, path, e)
                damage["wal_bad_segments"] += 1
                last_lsn = None
                continue
            read += 1
            try:
                info = segment_info(data)
            except StoreCorrupt as e:
                raise StoreCorrupt(f"{path}: {e}") from None
            if info is not None and last_lsn and info.prev_lsn > last_lsn:
                # The segment says which record came before it: those in between are gone.
                damage["wal_lsn_gaps"] += 1
                damage["wal_records_missing"] += info.prev_lsn - last_lsn
                log.error("bucket %s: WAL records %d to %d are missing before segment %s (a "
                          "segment deleted, emptied or cut); the points they held are lost",
                          self.name, last_lsn + 1, info.prev_lsn, path)
            # A head replayed from a segment is as old as the segment, so that head_max_age
            # seals it even when the store only ever runs for a moment.
            age_ms = int(max(0.0, wall - info.created) * 1000) if info and info.created else 0
            before = self.heads.counters()
            try:
                header_ok = self.heads.replay(data, now_ms - age_ms)
            except StoreCorrupt as e:
                raise StoreCorrupt(f"{path}: {e}") from None
            after = self.heads.counters()
            damage["wal_corrupt_records"] += after["corrupt_records"] - before["corrupt_records"]
            damage["wal_points_lost"] += after["points_lost"] - before["points_lost"]
            if not header_ok:
                damage["wal_bad_segments"] += 1
                log.error("bucket %s: WAL segment %s has a damaged header; its records were "
                          "recovered by checksum", self.name, path)
            last_lsn = None if info is None else max(last_lsn or 0, info.last_lsn, info.prev_lsn)
            if info is not None:
                self.replayed_lsn = max(self.replayed_lsn, info.last_lsn)
        return {"segments": read, "damage": found}

    def open_segment_on_thread(self) -> None:
        """At open: continues the newest segment after its last valid record when it can, so
        that commands that open the store for a moment do not leave a segment each; else
        starts a new one."""
        if self.segments:
            first_lsn, path = self.segments[-1]
            try:
                info = self.wal.resume_segment(path)
            except StoreIOError as e:
                log.warning("bucket %s: cannot continue WAL segment %s (%s); starting a new one",
                            self.name, path, e)
                info = None
            if info is not None and info.first_lsn == first_lsn and info.end < self.wal_segment_size:
                self.segment_started = time.monotonic()
                return
        self.new_segment_on_thread()

    def new_segment_on_thread(self) -> None:
        """Starts a new segment at the next LSN (the old one was synced by the caller)."""
        lsn = self.heads.next_lsn()
        path = os.path.join(self.wal_dir, f"{lsn:016x}.wal")
        now = time.monotonic()
        quick = self.segment_started is not None and now - self.segment_started < QUICK_SEGMENT_S
        self.wal.create_segment(path, lsn, max(self.wal.last_lsn, self.replayed_lsn),
                                0 if quick else self.wal_segment_size, int(time.time()))
        self.segment_started = now
        sync_directory(self.wal_dir)  # the new name must survive a power cut too
        if not self.segments or self.segments[-1][0] != lsn:
            self.segments.append((lsn, path))

    def try_ingest(self, batch_ptr, now_ms: int, min_ts: int) -> Ingested | None:
        """:meth:`ingest_on_thread` if the heads are free right now, else None (any thread)."""
        if not self.lock.acquire(blocking=False):
            return None
        try:
            return self._ingest_locked(batch_ptr, now_ms, min_ts)
        finally:
            self.lock.release()

    def ingest_on_thread(self, batch_ptr, now_ms: int, min_ts: int) -> Ingested:
        """Takes a batch into the heads, refusing points older than ``min_ts`` (ns)."""
        with self.lock:
            return self._ingest_locked(batch_ptr, now_ms, min_ts)

    def _ingest_locked(self, batch_ptr, now_ms: int, min_ts: int) -> Ingested:
        report = self.heads.ingest(batch_ptr, now_ms, min_ts, self.max_series)
        self.generation += 1
        sealed, created = self._take_outputs_locked()
        assert not sealed  # taking a batch never seals
        return Ingested(self.generation, report.taken, report.type_conflicts,
                        report.last_conflict, report.too_old, created, report.unlogged_points,
                        report.series_limited, report.last_limited)

    def _take_outputs_locked(self) -> tuple[list[RingEntry], list[NewSeries]]:
        """The blocks sealed and the series created since the last call (lock held)."""
        sealed, ids = self.heads.take_outputs()
        if sealed:
            self.sealed_unindexed += sealed
        created = []
        for sid in ids:
            known = self.heads.series(sid)
            assert known is not None   # the heads just reported it as created
            key, type_ = known
            created.append((sid, type_, key.decode("utf-8", "surrogateescape")))
        return sealed, created

    def log_and_seal_on_thread(self, now_ms: int) -> Logged:
        """Group commit, first half: the unlogged points go to the WAL in one write, except
        those of heads that are full, which are sealed into the ring directly; then full or old
        heads are sealed. The caller syncs the WAL, and the ring when any head was sealed
        directly, before the writers are answered."""
        with self.lock:
            gen = self.generation
            log_error = seal_error = None
            direct = 0
            points, size = self.heads.counters()["unlogged_points"], self.wal.size
            try:
                direct = self.heads.commit(self.wal, self.ring, now_ms)
            except Exception as e:  # the heads dropped the unlogged points: the writes fail
                log_error = e
            if log_error is None and points and self.wal.size > size:
                self.wal_bytes_per_point += 0.25 * ((self.wal.size - size) / points
                                                    - self.wal_bytes_per_point)
            if log_error is None:
                try:
                    self.heads.seal(self.ring, now_ms)
                except Exception as e:  # the heads kept their points; sealing is retried later
                    seal_error = e
                if self.head_copy_wanted:  # every point in the heads is logged right now
                    self.head_copy = (gen, self._copy_heads_locked(), self.ring.position[1] - 1,
                                      self.heads.next_lsn() - 1)
                    self.head_copy_wanted = False
            return Logged(gen, log_error, seal_error, direct, *self._take_outputs_locked())

    def _copy_heads_locked(self) -> list[tuple[int, HeadPoints]]:
        out = []
        for sid in range(1, self.heads.counters()["max_series_id"] + 1):
            head = HeadPoints(*self.heads.head(sid))
            if len(head.timestamps):
                out.append((sid, head))
        return out

    def seal_due_on_thread(self, now_ms: int, force: bool) -> Sealed:
        """Seals old (or, forced, all) logged heads."""
        error = None
        with self.lock:
            try:
                self.heads.seal(self.ring, now_ms, force)
            except Exception as e:
                error = e
            sealed, created = self._take_outputs_locked()
            return Sealed(sealed, created, self.heads.min_lsn(), self.ring.position[1] - 1,
                          error)

    def head_on_thread(self, series_id: int) -> tuple[HeadPoints, list[RingEntry]]:
        """A copy of a series' head, and the blocks sealed here that the index may not hold
        yet (see :meth:`heads_on_thread`)."""
        with self.lock:
            return HeadPoints(*self.heads.head(series_id)), self._sealed_unindexed_locked()

    def _sealed_unindexed_locked(self) -> list[RingEntry]:
        """The blocks sealed here that the index had not committed when the lock was taken
        (lock held): those below the index's next sequence number are committed (the loop
        moves it on once a checkpoint's transaction is), the others are copied."""
        indexed = self._state.next_seq if self._state is not None else 0
        kept = self.sealed_unindexed
        if kept and kept[0].seq < indexed:
            del kept[:bisect.bisect_left([e.seq for e in kept], indexed)]
        return list(kept)

    def newest_now(self, series_id: int) -> tuple[int, int] | None | bool:
        """The kept newest point (time, raw 64-bit value) of a watched series, None when it is
        not known, False when the heads are busy right now (any thread: the last value
        without a thread hop)."""
        if not self.lock.acquire(blocking=False):
            return False
        try:
            return self.heads.newest(series_id)
        finally:
            self.lock.release()

    def newest_on_thread(self, series_id: int) -> tuple[int, int] | None:
        """:meth:`newest_now` once the heads are free."""
        with self.lock:
            return self.heads.newest(series_id)

    def watch_on_thread(self, series_id: int) -> tuple[HeadPoints, tuple[bool, int] | None]:
        """Starts keeping a series' newest point (see :meth:`Heads.watch`) and copies its head,
        in one hold of the lock: every point after the copy updates the kept one."""
        with self.lock:
            self.watching = True
            return HeadPoints(*self.heads.head(series_id)), self.heads.watch(series_id)

    def fill_newest_on_thread(self, series_id: int, epoch: int,
                              point: tuple[int, int] | None) -> bool:
        """Completes a watch with the newest stored point read since it began."""
        with self.lock:
            return self.heads.fill_newest(series_id, epoch, point)

    def newest_dropped_on_thread(self, blocks: list[tuple[int, int]]) -> None:
        """Blocks (series id, newest time) that left the store: kept newest points that may
        have been in them are forgotten."""
        with self.lock:
            for series_id, max_ts in blocks:
                self.heads.newest_dropped(series_id, max_ts)

    def heads_on_thread(self, series_ids: list[int]
                        ) -> tuple[list[HeadPoints], list[RingEntry]]:
        """Copies of several series' heads, in one hold of the lock, and the blocks sealed
        here that the index did not hold then. A reader copies the heads before it reads the
        index and adds these blocks to those it took from :meth:`unindexed_blocks`: a point
        is then in its copy of a head (sealed later), or in one of these blocks, or in the
        index (a block committed before the read)."""
        with self.lock:
            heads = self.heads
            # the many empty heads of a query over many series share one empty copy
            return ([HeadPoints(*heads.head(sid)) if points else _EMPTY_HEAD
                     for sid, points in zip(series_ids, heads.head_points(series_ids))],
                    self._sealed_unindexed_locked())

    def wal_needed_from(self, sealed: Sealed) -> int:
        """The oldest LSN a replication stream may still need (loop thread): the records of
        blocks no stream is past yet, which tell a restarted stream which of their points
        it had sent from heads. ``sealed`` is the checkpoint's seal."""
        forwarded = self.forwarded_seq()
        if forwarded is None:
            self.wal_samples.clear()
            return sealed.min_lsn
        self.wal_samples.append((sealed.min_lsn, sealed.last_seq))
        while self.wal_samples and self.wal_samples[0][1] <= forwarded:
            self.wal_floor = max(self.wal_floor, self.wal_samples.popleft()[0])
        return self.wal_floor

    def delete_segments_on_thread(self, min_lsn: int, replication_lsn: int | None = None) -> int:
        """Deletes the segments whose records all lie below min_lsn (never the current one),
        and below ``replication_lsn`` too unless more than REPLICATION_KEPT_SEGMENTS would be
        kept."""
        removed = 0
        bound = min_lsn if replication_lsn is None else min(min_lsn, replication_lsn)
        while len(self.segments) > 1 and (
                self.segments[1][0] <= bound
                or (self.segments[1][0] <= min_lsn
                    and len(self.segments) > REPLICATION_KEPT_SEGMENTS)):
            _, path = self.segments.pop(0)
            try:
                os.unlink(path)
                removed += 1
            except FileNotFoundError:
                pass
        return removed

    def close_on_thread(self) -> None:
        with self.lock:
            ring, wal, heads, _ = self.opened_parts()
            for obj in (wal, ring, heads):
                if obj is not None:
                    obj.close()
            self.position_file.close()

    # ------------------------------------------------------------------ loop thread

    def add_series(self, created: list[NewSeries], persist: bool = True) -> None:
        for sid, type_, key in created:
            self.catalogue.add(sid, type_, key)
            if persist:
                self.pending_series.append(sid)
                self.file_series.append(sid)

    def absorb(self, sealed: list[RingEntry], created: list[NewSeries]) -> None:
        """Takes in blocks sealed and series created on the store thread (not yet indexed)."""
        self.add_series(created)
        for e in sealed:
            self.pending.append(e)
            if e.wal_lsn and e.wal_lsn > self.pending_sealed.get(e.series_id, 0):
                self.pending_sealed[e.series_id] = e.wal_lsn

    def note_seal_error(self, error: Exception | None) -> None:
        if error is not None:
            self.counters["seal_errors"] += 1
            log.error("bucket %s: sealing blocks failed (retried later): %s", self.name, error)

    def warn_too_old(self, problem: str) -> None:
        # A device with a wrong clock sends old points all the time: one line a minute.
        now = time.monotonic()
        if now - self.too_old_logged_at >= 60:
            self.too_old_logged_at = now
            log.warning("bucket %s: %s (counted as too_old; check the sender's clock)",
                        self.name, problem)

    def warn_series_limit(self, problem: str) -> None:
        # A sender that mints a series per message hits the limit on every write: once a minute.
        now = time.monotonic()
        if now - self.series_limit_logged_at >= 60:
            self.series_limit_logged_at = now
            log.warning("bucket %s: %s (counted as series_limited)", self.name, problem)

    def unindexed_blocks(self) -> list[RingEntry]:
        """The sealed blocks not in the index yet: those a running checkpoint is indexing and
        those waiting for the next. A reader takes this list before it reads the index, so a
        block the checkpoint commits meanwhile is in one or the other, never in neither."""
        return [*self.indexing, *self.pending]

    def take_unindexed(self) -> Unindexed:
        """Everything not yet in the index, handed to a checkpoint (see :meth:`restore`)."""
        u = Unindexed(self.pending, self.pending_series, self.pending_sealed,
                      sorted(self.corrupt_seqs), self.file_series)
        self.indexing = self.pending
        self.pending, self.pending_series, self.pending_sealed = [], array("I"), {}
        self.corrupt_seqs, self.file_series = set(), array("I")
        return u

    def restore(self, u: Unindexed) -> None:
        """Puts back what a failed checkpoint took, ahead of what arrived since."""
        self.pending[:0] = u.blocks
        self.indexing = []
        self.pending_series[:0] = u.series
        self.file_series[:0] = u.file_series
        for sid, lsn in u.sealed_lsn.items():
            self.pending_sealed[sid] = max(lsn, self.pending_sealed.get(sid, 0))
        self.corrupt_seqs.update(u.corrupt)

    # -------------------------------------------------- writers waiting for a commit

    def durable_future(self, generation: int) -> asyncio.Future | None:
        """A future answered when the commit covering batch ``generation`` is durable; None if
        it already is; raises the error of the commit that already failed it."""
        if generation <= self.durable_generation:
            return None
        for hi, error in self.outcomes:
            if generation <= hi and error is not None:
                raise error
        fut = asyncio.get_running_loop().create_future()
        self.waiters.append((generation, fut))
        return fut

    def note_unwaited(self, generation: int) -> None:
        """Batch ``generation`` was taken without a writer waiting for it."""
        if self.unwaited_since is None:
            self.unwaited_since = time.monotonic()
        self.unwaited_generation = generation

    def unwaited_due(self, now: float, bound: float) -> bool:
        """Whether points nobody waits for have waited ``bound`` seconds for a commit."""
        return self.unwaited_since is not None and now - self.unwaited_since >= bound

    def want_head_copy(self) -> asyncio.Future:
        """A future answered with (heads, newest sealed seq, LSN of the last record logged)
        copied by the next commit once that commit is durable: every point in the copy is
        durable (replication)."""
        fut = asyncio.get_running_loop().create_future()
        self.head_copy_waiters.append(fut)
        self.head_copy_wanted = True
        return fut

    def settle(self, generation: int, error: Exception | None) -> None:
        """Answers the writers of every batch up to ``generation``: durable, or ``error``."""
        if self.unwaited_generation <= generation:
            self.unwaited_since = None   # logged with this commit (or dropped by its failure)
        copy, self.head_copy = self.head_copy, None
        if copy is not None and error is None and copy[0] <= generation:
            waiters, self.head_copy_waiters = self.head_copy_waiters, []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(copy[1:])
        elif copy is not None:
            self.head_copy_wanted = True  # not durable: the next commit copies again
        if error is None:
            self.durable_generation = max(self.durable_generation, generation)
        self.outcomes.append((generation, error))
        keep = []
        for g, fut in self.waiters:
            if g > generation:
                keep.append((g, fut))
            elif not fut.done():
                if error is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(error)
        self.waiters = keep
        self.unlogged_points = 0

    def fail_waiters(self, error: Exception) -> None:
        for _, fut in self.waiters:
            if not fut.done():
                fut.set_exception(error)
        self.waiters.clear()

    def wal_size(self) -> int:
        total = 0
        for _, path in self.segments:
            try:
                total += os.path.getsize(path)
            except OSError:
                pass
        return total

    def overwritten_since(self, start: int, written: int | None, offset: int,
                          length: int) -> bool:
        """Whether the entry at [offset, offset + length) lies where the ring has written
        since its write position was ``start`` and its bytes_written was ``written`` (None:
        unknown, then up to one lap is seen; any thread)."""
        if written is not None and self.ring.bytes_written - written >= self.data_capacity:
            return True
        pos = self.ring.position[0]
        end = offset + length
        if pos >= start:
            return offset < pos and start < end
        return end > start or offset < pos   # wrapped: [start, end of file) and [data, pos)

    def forwarded_seq(self) -> int | None:
        """The sequence number every replication stream has sent, or None without streams."""
        return min(self.cursors.values()) if self.cursors else None

    @property
    def data_capacity(self) -> int:
        return self.max_size - RING_HEADER_SIZE
