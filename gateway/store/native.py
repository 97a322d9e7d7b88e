"""Thin typed wrappers over the store's C core (``gw_ring.h``, ``gw_wal.h``, ``gw_head.h``,
``gw_index.h``).

The only module of the store that touches ``ffi``/``lib``. The C structs are opaque to Python:
values go in as arguments, state and counters come out of one ``*_get_info``/``*_get_stats``
call per handle. Every C status code is turned into an exception at once; handles are freed by
``close()`` (safe twice), and carry ``ffi.gc`` as a safety net for one never closed.
None of these objects is thread-safe: the store calls a bucket's heads and WAL from its one
store thread only; ring reads may run on other threads.
"""

from __future__ import annotations

import errno
import os
from array import array
from dataclasses import dataclass

from gateway._native import ffi, lib
from gateway.datamodel import STRING
from gateway.errors import NativeError, StoreError

RING_HEADER_SIZE = lib.GW_RING_HEADER_SIZE
RING_ENTRY_HEADER = lib.GW_RING_ENTRY_HEADER
RING_MIN_CAPACITY = lib.GW_RING_MIN_CAPACITY
RING_MAX_ENTRY = lib.GW_RING_ENTRY_HEADER + lib.GW_RING_MAX_BLOCK + 8
OK, STALE, CORRUPT = lib.GW_OK, lib.GW_RING_STALE, lib.GW_ECORRUPT
_REF_BYTES = ffi.sizeof("gw_fold_ref")   # a block of a fold's block list: five int64 words


class StoreIOError(StoreError):
    """A file of the store could not be written or synced (full disk, I/O error)."""


class StoreCorrupt(StoreError):
    """A file of the store is not what it should be (not a ring file, damaged header)."""


def _io_error(rc: int, err: int, what: str) -> StoreError:
    if rc == lib.GW_ENOSPC:
        err = err or errno.ENOSPC
    reason = os.strerror(err) if err else {lib.GW_EIO: "I/O error", lib.GW_ENOMEM: "out of memory",
                                           lib.GW_EINVAL: "invalid argument"}.get(rc, f"status {rc}")
    e = StoreIOError(f"{what}: {reason}")
    e.errno = err or None
    return e


@dataclass(frozen=True, slots=True)
class RingEntry:
    """A block as written to (or found in) a ring file."""

    seq: int
    offset: int
    length: int
    series_id: int
    wal_lsn: int
    min_ts: int
    max_ts: int
    count: int

    @classmethod
    def from_c(cls, e) -> "RingEntry":
        return cls(e.seq, e.offset, e.length, e.series_id, e.wal_lsn, e.min_ts, e.max_ts, e.n)


class RingFile:
    """A bucket's preallocated ring file of blocks, with the bucket's size and retention
    recorded in its header. :meth:`create` makes a new one, :meth:`open` opens one as it is
    (read-only on request); :meth:`configure` changes what it records."""

    def __init__(self, path: str, ptr) -> None:
        self.path = path
        self._r = ffi.gc(ptr, lib.gw_ring_close)
        self._scratch = ffi.new("gw_ring_entry *")
        self._info = ffi.new("gw_ring_info *")

    @classmethod
    def create(cls, path: str, capacity: int, retention_ns: int | None) -> "RingFile":
        out = ffi.new("gw_ring **")
        rc = lib.gw_ring_create(os.fsencode(path), capacity, retention_ns or 0, out)
        if rc == lib.GW_EINVAL:
            raise StoreError(f"ring size {capacity} bytes is out of range "
                             f"(at least {RING_MIN_CAPACITY}) ({path})")
        if rc != OK:
            raise _io_error(rc, lib.gw_ring_open_errno(), f"cannot create ring file {path}")
        return cls(path, out[0])

    @classmethod
    def open(cls, path: str, read_only: bool = False) -> "RingFile":
        out = ffi.new("gw_ring **")
        rc = lib.gw_ring_open(os.fsencode(path), lib.GW_RING_READONLY if read_only else 0, out)
        if rc == lib.GW_ECORRUPT:
            raise StoreCorrupt(f"{path} is not a ring file of this store (both header copies "
                               f"are damaged or it was cut short); move it away to start the "
                               f"bucket afresh")
        if rc == lib.GW_RING_NEWER:
            raise StoreCorrupt(f"{path} has a ring format newer than version "
                               f"{lib.GW_RING_VERSION}, which this gateway reads; use a newer "
                               f"gateway")
        if rc != OK:
            raise _io_error(rc, lib.gw_ring_open_errno(), f"cannot open ring file {path}")
        return cls(path, out[0])

    def configure(self, capacity: int, retention_ns: int | None) -> None:
        """Records size and retention (resizing the file, rewriting both header copies)."""
        rc = lib.gw_ring_configure(self.ptr, capacity, retention_ns or 0)
        if rc == lib.GW_EINVAL:
            raise StoreError(f"ring size {capacity} bytes is out of range (at least "
                             f"{RING_MIN_CAPACITY}), or the ring is open read-only ({self.path})")
        if rc != OK:
            raise self._error(rc, "cannot write the header of")

    @property
    def retention_ns(self) -> int | None | bool:
        """The recorded retention: ns, None for none, False when not recorded (version 1)."""
        r = self.info().retention_ns
        return False if r < 0 else (r or None)

    @property
    def header_damage(self) -> list[str]:
        """Which header copies failed their checks on open."""
        d = self.info().header_damage
        out = []
        if d & lib.GW_RING_HEADER_PRIMARY_BAD:
            out.append("the header at offset 0")
        if d & lib.GW_RING_HEADER_COPY_BAD:
            out.append(f"the header copy at offset {lib.GW_RING_HEADER_COPY}")
        return out

    @property
    def ptr(self):
        if self._r is None:
            raise StoreError(f"ring file {self.path} is closed")
        return self._r

    def info(self):
        """The ring's state (a ``gw_ring_info``, overwritten by the next call)."""
        lib.gw_ring_get_info(self.ptr, self._info)
        return self._info

    capacity = property(lambda self: self.info().capacity)
    bytes_written = property(lambda self: self.info().bytes_written if self._r else 0)

    @property
    def position(self) -> tuple[int, int]:
        """(write position, next sequence number)."""
        info = self.info()
        return info.write_pos, info.next_seq

    def set_position(self, write_pos: int, next_seq: int) -> None:
        """Where the next entry goes; a position outside the data area means its start."""
        lib.gw_ring_set_position(self.ptr, max(0, write_pos), max(1, next_seq))

    def _error(self, rc: int, what: str) -> StoreError:
        return _io_error(rc, self.info().last_errno, f"{what} {self.path}")

    def read_error(self) -> StoreError:
        """The error of a read of this ring that failed with an I/O error."""
        return self._error(lib.GW_EIO, "cannot read ring file")

    def read(self, offset: int, length: int, seq: int) -> tuple[int, bytes | None]:
        """(status, block bytes): OK with the block, STALE (another entry is there) or
        CORRUPT; :meth:`entry_seq_at` tells whose entry header is there."""
        buf = ffi.new("uint8_t[]", length)
        entry = ffi.new("gw_ring_entry *")
        rc = lib.gw_ring_read_entry(self.ptr, offset, length, seq, buf, entry)
        if rc == OK:
            return OK, ffi.buffer(buf + RING_ENTRY_HEADER, entry.block_len)[:]
        if rc in (STALE, CORRUPT, lib.GW_EINVAL):
            return (STALE if rc == STALE else CORRUPT), None
        raise self._error(rc, "cannot read ring file")

    def entry_seq_at(self, offset: int) -> int | None:
        """The sequence number in the entry header at offset (its magic there), else None;
        the entry itself is not checked."""
        if not RING_HEADER_SIZE <= offset <= self.capacity - RING_ENTRY_HEADER:
            return None
        with open(self.path, "rb") as f:
            f.seek(offset)
            head = f.read(16)
        if len(head) < 16 or head[:4] != b"GWRE":
            return None
        return int.from_bytes(head[8:16], "little")

    def scan_next(self, pos: int, seq: int) -> RingEntry | None:
        """Recovery: entry ``seq`` at ``pos`` (or wrapped to the start), else None."""
        cap = 1 << 20
        while True:
            buf = ffi.new("uint8_t[]", cap)
            rc = lib.gw_ring_scan_next(self.ptr, pos, seq, buf, cap, self._scratch)
            if rc == lib.GW_ENOMEM and cap < RING_MAX_ENTRY:
                cap = RING_MAX_ENTRY  # the C side refuses anything longer
                continue
            break
        if rc == OK:
            return RingEntry.from_c(self._scratch)
        if rc in (STALE, lib.GW_ENOMEM):
            return None
        raise self._error(rc, "cannot read ring file")

    def find_next(self, pos: int) -> RingEntry | None:
        """Full scan: the first valid entry at or after ``pos``, whatever its sequence number."""
        rc = lib.gw_ring_find_next(self.ptr, pos, self._scratch)
        if rc == OK:
            return RingEntry.from_c(self._scratch)
        if rc == STALE:
            return None
        if rc == lib.GW_ENOMEM:
            raise MemoryError("out of memory while scanning a ring file")
        raise self._error(rc, "cannot read ring file")

    def sync(self) -> None:
        rc = lib.gw_ring_sync(self.ptr)
        if rc != OK:
            raise self._error(rc, "cannot sync ring file")

    def close(self) -> None:
        if self._r is not None:
            ffi.release(self._r)   # runs gw_ring_close now, and never again
            self._r = None


class IndexReader:
    """A read-only connection of its own to the block index file that lists series' blocks
    for the window fold in C (``gw_index.h``): no Python object per row. One thread at a time
    uses it."""

    def __init__(self, ptr, path: str) -> None:
        self.path = path
        self._r = ffi.gc(ptr, lib.gw_index_reader_close)

    @classmethod
    def open(cls, path: str, busy_ms: int) -> "IndexReader":
        """Raises StoreError when it cannot be had (the file cannot be opened, or SQLite is
        not loaded in this process: Python's sqlite3 module loads it)."""
        why = ffi.new("char[]", 256)
        ptr = lib.gw_index_reader_open(os.fsencode(path), busy_ms, why, 256)
        if ptr == ffi.NULL:
            raise StoreError(f"cannot read the block index {path} in C: "
                             f"{ffi.string(why).decode('utf-8', 'replace')}")
        return cls(ptr, path)

    def block_refs_many(self, bucket_id: int, series_ids: array, lo: int, hi: int,
                        max_ts_bound: int, extra: array, extra_at: array,
                        max_rows: int) -> tuple[array, array]:
        """The block lists of several series (array('q') of ids) in one read transaction:
        each series' blocks that may hold points in [lo, hi) as words of (seq, offset,
        length, min_ts, max_ts), ordered by (min_ts, seq): its index rows (those with max_ts
        up to ``max_ts_bound``: :meth:`BlockIndex.max_ts_bound`), and its blocks not indexed
        yet whose seq has no row, series k's being blocks extra_at[k] to extra_at[k + 1] of
        ``extra`` (``extra_at``: array('I'), one more entry than series): (refs, at), series
        k's blocks being blocks at[k] to at[k + 1] of refs.
        The listing stops before a series once ``max_rows`` blocks are listed (the first is
        always listed): ``len(at) - 1`` series are listed."""
        n = len(series_ids)
        at = array("I", bytes(4 * (n + 1)))
        extra_c = ffi.cast("gw_fold_ref *", ffi.from_buffer(extra)) if extra else ffi.NULL
        got = lib.gw_index_block_refs_many(
            self._r, bucket_id, ffi.from_buffer("int64_t[]", series_ids), n, lo, hi,
            max_ts_bound, extra_c, ffi.from_buffer("uint32_t[]", extra_at), max_rows,
            ffi.from_buffer("uint32_t[]", at))
        if got < 0:
            raise self._failure(got)
        del at[got + 1:]
        refs = array("q")
        if at[-1]:
            refs.frombytes(ffi.buffer(lib.gw_index_reader_refs(self._r), _REF_BYTES * at[-1]))
        return refs, at

    def _failure(self, rc: int) -> StoreError:
        why = ("out of memory" if rc == lib.GW_ENOMEM
               else ffi.string(lib.gw_index_reader_error(self._r)).decode("utf-8", "replace"))
        return StoreError(f"cannot read the block index {self.path}: {why}")

    def close(self) -> None:
        if self._r is not None:
            ffi.release(self._r)   # closes the connection now, and never again
            self._r = None


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """What a WAL segment's header says and where its valid records end."""

    version: int
    first_lsn: int
    prev_lsn: int        # the last record written before the segment (0: unknown)
    created: int         # unix seconds (0: unknown)
    end: int             # offset just past the last valid record
    last_lsn: int        # LSN of that record (0: none)

    @classmethod
    def from_c(cls, i) -> "SegmentInfo":
        return cls(i.version, i.first_lsn, i.prev_lsn, i.created, i.end, i.last_lsn)


def segment_info(data: bytes) -> SegmentInfo | None:
    """The header and record extent of a segment's bytes; None when the header is damaged or
    cut. Raises StoreCorrupt for a segment of a newer format."""
    info = ffi.new("gw_wal_segment_info *")
    rc = lib.gw_wal_segment_scan(data, len(data), info)
    if rc == lib.GW_WAL_EVERSION:
        raise StoreCorrupt(f"WAL segment of format version {info.version}, newer than this "
                           f"gateway reads ({lib.GW_WAL_VERSION})")
    return SegmentInfo.from_c(info) if rc == OK else None


class WriteAheadLog:
    """The open segment of a bucket's WAL (segment files are named and listed by the caller)."""

    def __init__(self) -> None:
        w = lib.gw_wal_new()
        if w == ffi.NULL:
            raise MemoryError("cannot allocate a WAL")
        self._w = ffi.gc(w, lib.gw_wal_free)
        self._info = ffi.new("gw_wal_info *")
        self.path: str | None = None

    @property
    def ptr(self):
        if self._w is None:
            raise StoreError("the WAL is closed")
        return self._w

    def info(self):
        """The WAL's state (a ``gw_wal_info``, overwritten by the next call)."""
        lib.gw_wal_get_info(self.ptr, self._info)
        return self._info

    size = property(lambda self: self.info().size)
    segment_lsn = property(lambda self: self.info().segment_first_lsn)
    last_lsn = property(lambda self: self.info().last_lsn)
    bytes_written = property(lambda self: self.info().bytes_written if self._w else 0)

    def set_max_body(self, max_body: int) -> None:
        """Cuts records at ``max_body`` body bytes (the format's limit by default; tests lower
        it to see records cut)."""
        lib.gw_wal_set_max_body(self.ptr, max_body)

    def create_segment(self, path: str, first_lsn: int, prev_lsn: int, size: int,
                       created: int) -> None:
        """A new current segment, preallocated to ``size`` bytes of written zeros."""
        rc = lib.gw_wal_create_segment(self.ptr, os.fsencode(path), first_lsn, prev_lsn,
                                       max(size, lib.GW_WAL_SEGMENT_HEADER), created)
        if rc != OK:
            raise _io_error(rc, self.info().last_errno, f"cannot create WAL segment {path}")
        self.path = path

    def resume_segment(self, path: str) -> SegmentInfo | None:
        """Continues an existing segment after its last valid record; None when it cannot be
        continued (older layout, damaged header), so the caller starts a new one."""
        info = ffi.new("gw_wal_segment_info *")
        rc = lib.gw_wal_resume_segment(self.ptr, os.fsencode(path), info)
        if rc in (lib.GW_ECORRUPT, lib.GW_WAL_EVERSION):
            return None
        if rc == lib.GW_ENOMEM:
            raise MemoryError(f"cannot read WAL segment {path}")
        if rc != OK:
            raise _io_error(rc, self.info().last_errno, f"cannot continue WAL segment {path}")
        self.path = path
        return SegmentInfo.from_c(info)

    def sync(self) -> None:
        rc = lib.gw_wal_sync(self.ptr)
        if rc != OK:
            raise _io_error(rc, self.info().last_errno, f"cannot sync WAL segment {self.path}")

    def close(self) -> None:
        if self._w is not None:
            ffi.release(self._w)   # runs gw_wal_free now, and never again
            self._w = None


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What taking one batch into the heads did (``gw_ingest_report``)."""

    taken: int
    type_conflicts: int
    last_conflict: int     # index in the batch of the last point refused for its type, -1
    too_old: int
    unlogged_points: int   # in the heads, not yet in the WAL, after the call
    series_limited: int = 0   # refused: a new series past max_series
    last_limited: int = -1    # index in the batch of the last of those, -1


_STATS = ("next_lsn", "max_series_id", "points_ingested", "type_conflicts", "too_old",
          "unlogged_points", "head_points_total", "head_bytes", "blocks_sealed", "direct_sealed",
          "records_replayed", "points_replayed", "corrupt_records", "corrupt_bytes",
          "points_lost")


class Heads:
    """The per-series head buffers of one bucket (see ``gw_head.h``)."""

    def __init__(self, head_points: int, head_max_age_ms: int) -> None:
        h = lib.gw_heads_new(head_points, head_max_age_ms)
        if h == ffi.NULL:
            raise MemoryError("cannot allocate heads")
        self._h = ffi.gc(h, lib.gw_heads_free)
        self._stats = ffi.new("gw_heads_stats *")
        self._ingest = ffi.new("gw_ingest_report *")
        self._commit = ffi.new("gw_commit_report *")
        self._counts = ffi.new("uint32_t[2]")
        self._epoch = ffi.new("uint32_t *")
        self._newest_ts = ffi.new("int64_t *")
        self._newest_value = ffi.new("uint64_t *")

    @property
    def ptr(self):
        if self._h is None:
            raise StoreError("the store is closed")
        return self._h

    @property
    def closed(self) -> bool:
        return self._h is None

    def counters(self) -> dict[str, int]:
        """Every counter of the heads, from one call."""
        lib.gw_heads_get_stats(self.ptr, self._stats)
        st = self._stats
        return {name: getattr(st, name) for name in _STATS}

    def next_lsn(self) -> int:
        lib.gw_heads_get_stats(self.ptr, self._stats)
        return self._stats.next_lsn

    def resume(self, next_lsn: int, max_series_id: int) -> None:
        """Recovery: the next LSN and the highest series id are at least these from now on."""
        lib.gw_heads_resume(self.ptr, next_lsn, max_series_id)

    def define(self, series_id: int, type_: int, key: bytes, sealed_lsn: int) -> bool:
        rc = lib.gw_heads_define(self.ptr, series_id, type_, key, len(key), sealed_lsn)
        if rc == lib.GW_ENOMEM:
            raise MemoryError("cannot define series")
        return rc == OK

    def note_sealed(self, series_id: int, lsn: int) -> None:
        lib.gw_heads_note_sealed(self.ptr, series_id, lsn)

    def series(self, series_id: int) -> tuple[bytes, int] | None:
        n = ffi.new("uint32_t *")
        p = lib.gw_heads_series_key(self.ptr, series_id, n)
        if p == ffi.NULL:
            return None
        return ffi.buffer(p, n[0])[:], lib.gw_heads_series_type(self.ptr, series_id)

    def sealed_lsn(self, series_id: int) -> int:
        return lib.gw_heads_series_sealed_lsn(self.ptr, series_id)

    def ingest(self, batch_ptr, now_ms: int, min_ts: int = -(1 << 63),
               max_series: int = 0) -> IngestReport:
        """Takes a batch, refusing points older than ``min_ts`` (ns; by default none) and
        points that would create a series past ``max_series`` (0: no limit)."""
        r = self._ingest
        if lib.gw_heads_ingest(self.ptr, batch_ptr, now_ms, min_ts, max_series, r) < 0:
            raise MemoryError("out of memory while taking a batch")
        return IngestReport(r.taken, r.type_conflicts, r.last_conflict, r.too_old,
                            r.unlogged_points, r.series_limited, r.last_limited)

    def commit(self, wal: WriteAheadLog, ring: RingFile | None, now_ms: int) -> int:
        """Group commit, with direct sealing of full heads when a ring is given; returns how
        many heads were sealed directly (then the ring must be synced too). Raises
        StoreIOError."""
        r = self._commit
        rc = lib.gw_heads_commit(self.ptr, wal.ptr, ring.ptr if ring is not None else ffi.NULL,
                                 now_ms, r)
        if rc != OK:
            if r.failed_file == lib.GW_FILE_RING and ring is not None:   # only with a ring
                raise _io_error(rc, r.failed_errno, f"cannot write ring file {ring.path}")
            raise _io_error(rc, r.failed_errno, f"cannot write WAL segment {wal.path}")
        return r.sealed_directly

    def log(self, wal: WriteAheadLog) -> None:
        """Logs every unlogged point to the WAL (a commit without direct sealing)."""
        self.commit(wal, None, 0)

    def seal(self, ring: RingFile, now_ms: int, force: bool = False) -> None:
        rc = lib.gw_heads_seal(self.ptr, ring.ptr, now_ms, 1 if force else 0)
        if rc != OK:
            raise ring._error(rc, "cannot write ring file")

    def take_outputs(self) -> tuple[list[RingEntry], list[int]]:
        """The blocks sealed and the series ids created since the last call."""
        counts = self._counts
        lib.gw_heads_outputs(self.ptr, counts, counts + 1)
        n_sealed, n_new = counts[0], counts[1]
        if not n_sealed and not n_new:
            return [], []
        sealed = ffi.new("gw_ring_entry[]", max(n_sealed, 1))
        created = ffi.new("uint32_t[]", max(n_new, 1))
        lib.gw_heads_take_outputs(self.ptr, sealed, created)
        return ([RingEntry.from_c(sealed[i]) for i in range(n_sealed)],
                [created[i] for i in range(n_new)])

    def replay(self, data: bytes, now_ms: int, upto_lsn: int | None = None) -> bool:
        """Replays one segment (only the records up to ``upto_lsn`` when given); False when
        its header was damaged (records still recovered). Raises StoreCorrupt for a segment
        of a newer format (nothing replayed)."""
        rc = (lib.gw_heads_replay(self.ptr, data, len(data), now_ms) if upto_lsn is None
              else lib.gw_heads_replay_upto(self.ptr, data, len(data), now_ms, upto_lsn))
        if rc == lib.GW_ENOMEM:
            raise MemoryError("out of memory while replaying the WAL")
        if rc == lib.GW_WAL_EVERSION:
            raise StoreCorrupt(f"WAL segment of a format version newer than this gateway reads "
                               f"({lib.GW_WAL_VERSION})")
        return rc == OK

    def min_lsn(self) -> int:
        return lib.gw_heads_min_lsn(self.ptr)

    def head_points(self, series_ids: list[int]) -> array:
        """array('I') of the points in each of these series' heads (0: none, or unknown)."""
        ids = array("I", series_ids)
        out = array("I", bytes(4 * len(ids)))
        if ids:
            lib.gw_heads_head_points(self.ptr, ffi.from_buffer("uint32_t[]", ids), len(ids),
                                     ffi.from_buffer("uint32_t[]", out))
        return out

    def head(self, series_id: int):
        """(timestamps, raw 64-bit values or None, strings list or None) of a head, copied."""
        n = ffi.new("uint32_t *")
        sb = ffi.new("uint64_t *")
        if lib.gw_heads_head_size(self.ptr, series_id, n, sb) != OK or n[0] == 0:
            return array("q"), array("Q"), None
        count = n[0]
        ts = array("q", bytes(8 * count))
        type_ = lib.gw_heads_series_type(self.ptr, series_id)
        if type_ == STRING:
            strings = ffi.new("char[]", sb[0] + 1)
            offs = ffi.new("uint32_t[]", count + 1)
            lib.gw_heads_head_copy(self.ptr, series_id, ffi.from_buffer("int64_t[]", ts), ffi.NULL,
                                   strings, offs)
            raw = ffi.buffer(strings, sb[0])[:]
            return ts, None, [raw[offs[i]:offs[i + 1]].decode("utf-8", "surrogateescape")
                              for i in range(count)]
        values = array("Q", bytes(8 * count))
        lib.gw_heads_head_copy(self.ptr, series_id, ffi.from_buffer("int64_t[]", ts),
                               ffi.from_buffer("uint64_t[]", values), ffi.NULL, ffi.NULL)
        return ts, values, None

    def watch(self, series_id: int) -> tuple[bool, int] | None:
        """Starts keeping the newest point of a series: (known already, epoch for
        :meth:`fill_newest`), or None for a string series or when the table is full."""
        rc = lib.gw_heads_watch(self.ptr, series_id, self._epoch)
        return None if rc < 0 else (rc == 1, self._epoch[0])

    def newest(self, series_id: int) -> tuple[int, int] | None:
        """(time, raw 64-bit value) of a watched series' newest point, or None when not known."""
        if not lib.gw_heads_newest(self.ptr, series_id, self._newest_ts, self._newest_value):
            return None
        return self._newest_ts[0], self._newest_value[0]

    def fill_newest(self, series_id: int, epoch: int, point: tuple[int, int] | None) -> bool:
        """Completes a watch with the newest stored point read since it began (time, raw
        value; None: none). False when the newest point was invalidated in between."""
        ts, raw = point if point is not None else (0, 0)
        return lib.gw_heads_newest_fill(self.ptr, series_id, epoch, point is not None, ts, raw) == 1

    def newest_dropped(self, series_id: int, max_ts: int) -> None:
        """A block of the series ending at max_ts left the store."""
        lib.gw_heads_newest_dropped(self.ptr, series_id, max_ts)

    def close(self) -> None:
        if self._h is not None:
            ffi.release(self._h)   # runs gw_heads_free now, and never again
            self._h = None


def crc32c(data: bytes) -> int:
    """CRC32C (Castagnoli) of data, the checksum of every store file."""
    return lib.gw_crc32c(0, data, len(data))


def batch_point(batch_ptr, index: int) -> tuple[bytes, int]:
    """(series key, type) of point ``index`` of a C batch (for error messages)."""
    p = batch_ptr.points[index]
    return ffi.buffer(batch_ptr.arena + p.key_off, p.key_len)[:], p.type


def batch_time_bounds(batch_ptr) -> tuple[int, int] | None:
    """(min, max) timestamp of a C batch's points, or None when it is empty."""
    lo, hi = ffi.new("int64_t *"), ffi.new("int64_t *")
    if not lib.gw_batch_time_bounds(batch_ptr, lo, hi):
        return None
    return lo[0], hi[0]


def merge_order(timestamps: array) -> array:
    """Indices that sort points (given oldest write first) by time, keeping the last write of
    each timestamp."""
    n = len(timestamps)
    order = array("I", bytes(4 * n))
    if n == 0:
        return order
    kept = lib.gw_heads_merge_order(ffi.from_buffer("int64_t[]", timestamps), n,
                                    ffi.from_buffer("uint32_t[]", order))
    if kept < 0:
        raise MemoryError("out of memory while merging")
    del order[kept:]
    return order


def sort_keys(arena: bytearray, offsets: array, lengths: array, ids: array) -> None:
    """Sorts ``ids`` (array 'I') in place by their keys, ``arena[offsets[i]:offsets[i] +
    lengths[i]]``, byte by byte (``offsets`` array 'Q', ``lengths`` array 'I', by id)."""
    if len(offsets) != len(lengths):
        raise ValueError("offsets and lengths differ in length")
    rc = lib.gw_keys_sort(ffi.from_buffer("uint8_t[]", arena), len(arena),
                          ffi.from_buffer("uint64_t[]", offsets),
                          ffi.from_buffer("uint32_t[]", lengths), len(offsets),
                          ffi.from_buffer("uint32_t[]", ids), len(ids))
    if rc == lib.GW_ENOMEM:
        raise MemoryError("out of memory while sorting series keys")
    if rc != OK:
        raise ValueError("a series id or key lies outside the catalogue")


def gather64(column: array, order: array, typecode: str) -> array:
    """``column[order]`` for a column of 64-bit items, as an array of ``typecode``."""
    out = array(typecode, bytes(8 * len(order)))
    if order:
        lib.gw_heads_gather64(ffi.from_buffer("uint64_t[]", column), ffi.from_buffer("uint32_t[]", order),
                              len(order), ffi.from_buffer("uint64_t[]", out))
    return out


__all__ = ["RingFile", "RingEntry", "WriteAheadLog", "SegmentInfo", "segment_info", "Heads", "IngestReport", "merge_order", "gather64", "batch_point", "crc32c",
           "StoreIOError", "StoreCorrupt", "NativeError"]
