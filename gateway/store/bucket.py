"""One bucket of the store: its ring file, WAL segments, heads, catalogue and counters.

Methods named ``*_sync`` do file I/O or touch the C heads and run on the store's one store
thread; the C heads are not thread-safe, so every call on them holds ``lock``. Taking a batch
(pure in-memory work) may also run on the event loop thread when the lock is free
(:meth:`Bucket.try_ingest`), which spares a thread hop per write. Everything else runs on the
event loop thread, which alone mutates the Python-side state.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import os
import re
from dataclasses import dataclass

from gateway.countfile import CountFile
from gateway.lineprotocol import split_series_key
from gateway.store import catalogue
from gateway.store.index import BucketState
from gateway.store.native import RING_HEADER_SIZE, Heads, RingEntry, RingFile, WriteAheadLog

log = logging.getLogger("gateway.store")

_SEGMENT_NAME = re.compile(r"^([0-9a-f]{16})\.wal$")
TYPE_NAMES = {1: "float", 2: "integer", 3: "unsigned", 4: "boolean", 5: "string"}


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    """A series of the catalogue."""

    id: int
    key: str
    type: int
    measurement: str
    tags: dict
    field: str

    @property
    def type_name(self) -> str:
        return TYPE_NAMES.get(self.type, "?")


def series_info(series_id: int, type_: int, key: str) -> SeriesInfo:
    try:
        measurement, tags, field = split_series_key(key)
    except ValueError:
        measurement, tags, field = key, {}, ""
    return SeriesInfo(series_id, key, type_, measurement, tags, field)


class Bucket:
    def __init__(self, name: str, path: str, max_size: int, retention_ns: int | None,
                 head_points: int, head_max_age_ms: int) -> None:
        self.name = name
        self.path = path
        self.wal_dir = os.path.join(path, "wal")
        self.max_size = max_size
        self.retention_ns = retention_ns
        self.head_points = head_points
        self.head_max_age_ms = head_max_age_ms
        self.ring: RingFile | None = None
        self.wal: WriteAheadLog | None = None
        self.heads: Heads | None = None
        self.state: BucketState | None = None
        self.catalogue: dict[int, SeriesInfo] = {}
        self.by_key: dict[str, int] = {}
        # Waiting for durability: (generation, future); outcomes of recent commits.
        self.generation = 0          # store thread: batches taken so far
        self.durable_generation = 0
        self.waiters: list = []
        self.outcomes: collections.deque = collections.deque(maxlen=64)
        self.unlogged_points = 0
        # Not yet in the index (loop thread).
        self.pending: list[RingEntry] = []
        self.pending_series: list[tuple[int, int, str]] = []
        self.file_series: list[tuple[int, int, str]] = []   # not yet in the series file
        self.series_path = os.path.join(path, "series")
        # The replication cursors, also kept beside the ring (written at checkpoints when they
        # changed) so that an index rebuilt from the ring does not restart every stream at zero.
        self.cursor_file = CountFile(os.path.join(path, "cursors.json"), "replication cursors", log)
        self.cursors_saved: dict[str, int] | None = None   # what cursor_file holds, once known
        self.ring_existed = False
        self.chain_start: int | None = None   # set by an index rebuild, see Store._checkpoint
        self.pending_sealed: dict[int, int] = {}
        self.corrupt_seqs: set[int] = set()
        self.segments: list[tuple[int, str]] = []    # (first LSN, path), oldest first
        self.counters = collections.Counter()
        self.too_old_logged_at = -1e9   # time.monotonic() of the last warning about old points
        self.cursors: dict[str, int] = {}
        self.ring_bytes_at_open = 0
        self.lock = threading.Lock()
        self.commit_lock = asyncio.Lock()

    # ------------------------------------------------------------------ store thread

    def open_files_sync(self) -> None:
        os.makedirs(self.wal_dir, exist_ok=True)
        ring_path = os.path.join(self.path, "ring")
        self.ring_existed = os.path.exists(ring_path) and os.path.getsize(ring_path) > 0
        self.ring = RingFile(os.path.join(self.path, "ring"), self.max_size)
        self.wal = WriteAheadLog()
        self.heads = Heads(self.head_points, self.head_max_age_ms)
        segments = []
        for name in os.listdir(self.wal_dir):
            m = _SEGMENT_NAME.match(name)
            if m:
                segments.append((int(m.group(1), 16), os.path.join(self.wal_dir, name)))
            elif name.endswith(".wal.tmp"):
                os.unlink(os.path.join(self.wal_dir, name))
        self.segments = sorted(segments)

    def recover_ring_sync(self, write_pos: int, next_seq: int) -> list[RingEntry]:
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

    def rebuild_sync(self) -> list[RingEntry]:
        """Full scan of the ring for a lost index: the newest run of consecutive sequence
        numbers (older entries are evicted, or were cut off by the wrap that left them)."""
        found = {}
        pos = RING_HEADER_SIZE
        while True:
            e = self.ring.find_next(pos)
            if e is None:
                break
            found[e.seq] = e
            pos = e.offset + e.length
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

    def append_series_file_sync(self, series: list[tuple[int, int, str]]) -> None:
        catalogue.append(self.series_path, series)

    def replay_sync(self, now_ms: int) -> dict:
        """Replays every WAL segment in order into the heads."""
        stats = {"segments": 0, "bad_segments": 0}
        for first_lsn, path in self.segments:
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError as e:
                log.error("bucket %s: cannot read WAL segment %s: %s", self.name, path, e)
                stats["bad_segments"] += 1
                continue
            stats["segments"] += 1
            if not self.heads.replay(data, now_ms):
                stats["bad_segments"] += 1
                log.error("bucket %s: WAL segment %s has a damaged header; its records were "
                          "recovered by checksum", self.name, path)
        return stats

    def new_segment_sync(self) -> None:
        """Starts a new segment at the next LSN (the old one was synced by the caller)."""
        lsn = self.heads.ptr.next_lsn
        path = os.path.join(self.wal_dir, f"{lsn:016x}.wal")
        self.wal.open_segment(path, lsn)
        fd = os.open(self.wal_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)  # the new name must survive a power cut too
        finally:
            os.close(fd)
        if not self.segments or self.segments[-1][0] != lsn:
            self.segments.append((lsn, path))

    def try_ingest(self, batch_ptr, now_ms: int, min_ts: int):
        """:meth:`ingest_sync` if the heads are free right now, else None (any thread)."""
        if not self.lock.acquire(blocking=False):
            return None
        try:
            return self._ingest_locked(batch_ptr, now_ms, min_ts)
        finally:
            self.lock.release()

    def ingest_sync(self, batch_ptr, now_ms: int, min_ts: int):
        """Takes a batch into the heads, refusing points older than ``min_ts`` (ns). Returns
        (generation, points taken, points refused for their type, index of the last of those,
        points refused as too old, new series, unlogged points)."""
        with self.lock:
            return self._ingest_locked(batch_ptr, now_ms, min_ts)

    def _ingest_locked(self, batch_ptr, now_ms: int, min_ts: int):
        h = self.heads.ptr
        conflicts_before, too_old_before = h.type_conflicts, h.too_old
        h.min_ts = min_ts
        taken = self.heads.ingest(batch_ptr, now_ms)
        self.generation += 1
        refused = h.type_conflicts - conflicts_before
        too_old = h.too_old - too_old_before
        created = self._created_sync()
        return (self.generation, taken, refused, h.last_conflict, too_old, created,
                h.unlogged_points)

    def _created_sync(self) -> list[tuple[int, int, str]]:
        h = self.heads.ptr
        out = []
        for i in range(h.n_new_series):
            sid = h.new_series[i]
            key, type_ = self.heads.series(sid)
            out.append((sid, type_, key.decode("utf-8", "surrogateescape")))
        h.n_new_series = 0
        return out

    def _sealed_sync(self) -> list[RingEntry]:
        h = self.heads.ptr
        out = [RingEntry.from_c(h.sealed[i]) for i in range(h.n_sealed)]
        h.n_sealed = 0
        return out

    def log_and_seal_sync(self, now_ms: int, segment_bytes: int):
        """Group commit, first half: the unlogged points go to the WAL in one write, except
        those of heads that are full, which are sealed into the ring directly; then full or old
        heads are sealed. Returns (generation covered, commit error, seal error, heads sealed
        directly, sealed blocks, new series). The caller syncs the WAL, and the ring when any
        head was sealed directly, before the writers are answered."""
        with self.lock:
            return self._log_and_seal_locked(now_ms)

    def _log_and_seal_locked(self, now_ms: int):
        gen = self.generation
        log_error = seal_error = None
        direct = 0
        try:
            direct = self.heads.commit(self.wal, self.ring, now_ms)
        except Exception as e:  # the heads dropped the unlogged points: the writes fail
            log_error = e
        if log_error is None:
            try:
                self.heads.seal(self.ring, now_ms)
            except Exception as e:  # the heads kept their points; sealing is retried later
                seal_error = e
        return gen, log_error, seal_error, direct, self._sealed_sync(), self._created_sync()

    def seal_due_sync(self, now_ms: int, force: bool):
        """Seals old (or, forced, all) logged heads. Returns (sealed, created, min LSN still
        needed, seal error)."""
        error = None
        with self.lock:
            try:
                self.heads.seal(self.ring, now_ms, force)
            except Exception as e:
                error = e
            return self._sealed_sync(), self._created_sync(), self.heads.min_lsn(), error

    def head_sync(self, series_id: int):
        """A copy of a series' head (see Heads.head)."""
        with self.lock:
            return self.heads.head(series_id)

    def delete_segments_sync(self, min_lsn: int) -> int:
        """Deletes the segments whose records all lie below min_lsn (never the current one)."""
        removed = 0
        while len(self.segments) > 1 and self.segments[1][0] <= min_lsn:
            _, path = self.segments.pop(0)
            try:
                os.unlink(path)
                removed += 1
            except FileNotFoundError:
                pass
        return removed

    def close_sync(self) -> None:
        with self.lock:
            for obj in (self.wal, self.ring, self.heads):
                if obj is not None:
                    obj.close()

    # ------------------------------------------------------------------ loop thread

    def add_series(self, created: list[tuple[int, int, str]], persist: bool = True) -> None:
        for sid, type_, key in created:
            info = series_info(sid, type_, key)
            self.catalogue[sid] = info
            self.by_key[key] = sid
            if persist:
                self.pending_series.append((sid, type_, key))
                self.file_series.append((sid, type_, key))

    def absorb(self, sealed: list[RingEntry], created) -> None:
        self.add_series(created)
        for e in sealed:
            self.pending.append(e)
            if e.wal_lsn and e.wal_lsn > self.pending_sealed.get(e.series_id, 0):
                self.pending_sealed[e.series_id] = e.wal_lsn

    def wal_size(self) -> int:
        total = 0
        for _, path in self.segments:
            try:
                total += os.path.getsize(path)
            except OSError:
                pass
        return total

    def forwarded_seq(self) -> int | None:
        """The sequence number every replication stream has sent, or None without streams."""
        return min(self.cursors.values()) if self.cursors else None

    @property
    def data_capacity(self) -> int:
        return self.max_size - RING_HEADER_SIZE
