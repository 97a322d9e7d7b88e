"""The block index and series catalogue of the store, in SQLite through aiosqlite.

One row per live block (bucket, sequence number, series, time range, place in the ring file),
one row per series, one row per bucket holding its ring checkpoint (write position and next
sequence number: where recovery resumes scanning the ring) and its durable counters, and the
replication cursors. Rows are written in batches by :meth:`BlockIndex.commit`, never per point.
"""

from __future__ import annotations

from array import array

import bisect
import itertools
import logging
import os
import struct
import urllib.parse
from dataclasses import dataclass, field
from typing import AsyncIterator, Iterable

import aiosqlite

from gateway.datamodel import MAX_TIME_NS
from gateway.errors import StoreError
from gateway.store.native import IndexReader

log = logging.getLogger("gateway.store")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    write_pos INTEGER NOT NULL DEFAULT 0,
    next_seq INTEGER NOT NULL DEFAULT 1,
    evicted_blocks INTEGER NOT NULL DEFAULT 0,
    evicted_points INTEGER NOT NULL DEFAULT 0,
    expired_blocks INTEGER NOT NULL DEFAULT 0,
    expired_points INTEGER NOT NULL DEFAULT 0,
    dropped_unforwarded INTEGER NOT NULL DEFAULT 0,
    corrupt_blocks INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS series (
    bucket INTEGER NOT NULL,
    id INTEGER NOT NULL,
    type INTEGER NOT NULL,
    key TEXT NOT NULL,
    sealed_lsn INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blocks (
    bucket INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    series INTEGER NOT NULL,
    min_ts INTEGER NOT NULL,
    max_ts INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    length INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (bucket, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blocks_by_series ON blocks (bucket, series, max_ts);
CREATE TABLE IF NOT EXISTS replication_cursors (
    name TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (name, bucket)
) WITHOUT ROWID;
"""

#: The tables a read-only open copies into memory (recovery may change them there). The
#: blocks, the bulk of the file, are read from it until something would change them (see
#: BlockIndex._own_blocks).
_COPIED_READ_ONLY = ("buckets", "replication_cursors")

#: Series ids per ``IN (...)`` list: well under SQLite's limit of bound parameters.
_IN_CHUNK = 500
#: Block rows fetched at a time for the window fold's block lists (a row is a tuple of six
#: ints, about 280 bytes while it lives).
_REF_FETCH = 1024
#: A fetched block row packed into native int64 words (series, seq, offset, length, min_ts,
#: max_ts).
_REF_ROW = struct.Struct("=6q")

#: Bytes of the index's rollback journal kept after a transaction (see _connect): a
#: checkpoint's transaction changes a few dozen pages.
_JOURNAL_SIZE_LIMIT = 1 << 20

#: How long a C reader of the index (:meth:`BlockIndex.native_reader`) waits for a commit in
#: progress: as long as Python's sqlite3 waits for a lock.
_READER_BUSY_MS = 5000

COUNTERS = ("evicted_blocks", "evicted_points", "expired_blocks", "expired_points",
            "dropped_unforwarded", "corrupt_blocks")


@dataclass(slots=True)
class BlockRow:
    seq: int
    series: int
    min_ts: int
    max_ts: int
    offset: int
    length: int
    count: int


@dataclass
class BucketState:
    """What the index knows of a bucket when it opens."""

    id: int
    write_pos: int
    next_seq: int
    counters: dict[str, int]
    series_count: int   # series rows (read them with BlockIndex.series_rows)
    live_blocks: int = 0
    live_bytes: int = 0
    live_points: int = 0
    oldest: int | None = None
    newest: int | None = None
    first_block_end: int | None = None   # the smallest max_ts: age expiry waits for it
    cursors: dict[str, int] = field(default_factory=dict)


@dataclass
class RepairResult:
    corrected: int = 0   # rows that pointed elsewhere, now pointing at their block
    restored: int = 0    # blocks in the ring that had lost their row
    dropped: int = 0     # rows of blocks the ring does not hold (damaged): corrupt blocks


@dataclass
class CommitResult:
    evicted_blocks: int = 0
    evicted_points: int = 0
    evicted_bytes: int = 0
    expired_blocks: int = 0
    expired_points: int = 0
    expired_bytes: int = 0
    dropped_unforwarded: int = 0
    added_blocks: int = 0
    added_points: int = 0
    added_bytes: int = 0
    gone: list[tuple[int, int]] = field(default_factory=list)   # (series, max_ts) of each block dropped


def write_events(pending: list, previous_pos: int, capacity: int) -> list[tuple[int, int, object]]:
    """What a batch of new blocks (seq order) did to the ring, in order: (lo, hi, entry) for
    each block and (lo, hi, None) for the tail a wrap skipped. The skipped tail counts as
    overwritten: its blocks are older than those at the start the wrap overwrites, so the
    ring always holds one contiguous run of the newest blocks."""
    events: list[tuple[int, int, object]] = []
    pos = previous_pos
    for e in pending:
        if e.offset != pos:
            if pos < capacity:
                events.append((pos, capacity, None))
        events.append((e.offset, e.offset + e.length, e))
        pos = e.offset + e.length
    return events


def surviving(events: list) -> tuple[list, list]:
    """Splits the new blocks into (kept, overwritten by a later write of the same batch);
    only a batch larger than the ring overwrites its own blocks."""
    starts: list[int] = []
    ends: list[int] = []
    kept: list = []
    lost: list = []
    for a, b, e in reversed(events):
        if e is not None:
            i = bisect.bisect_right(starts, a) - 1
            hit = (i >= 0 and ends[i] > a) or (i + 1 < len(starts) and starts[i + 1] < b)
            (lost if hit else kept).append(e)
        j = bisect.bisect_left(starts, a)
        starts.insert(j, a)
        ends.insert(j, b)
    kept.reverse()
    lost.reverse()
    return kept, lost


def _overlaps(events: list, lo: int, hi: int) -> bool:
    return any(a < hi and lo < b for a, b, _ in events)


class BlockIndex:
    """The SQLite file ``index.sqlite`` of a store."""

    def __init__(self, db: aiosqlite.Connection, path: str, created: bool) -> None:
        self._db = db
        self.path = path
        #: The file was made by this open (new store, or the old file was lost or unreadable).
        self.created = created
        #: Where the series rows are read: the attached file when opened read-only.
        self._series_table = "series"
        #: Read-only: the blocks are still read from the file (a view over its table).
        self._blocks_on_file = False
        #: Where the blocks table that queries see is a file that C readers can open (None:
        #: it lives in memory, or C could not read it): see native_reader.
        self._native_path: str | None = path
        self._readers: list[IndexReader] = []
        #: Per bucket, no block row spans more time than this (max_ts - min_ts): a time range
        #: then needs only the rows with max_ts < its stop + this (see max_ts_bound).
        self._spans: dict[int, int] = {}

    @classmethod
    async def open(cls, path: str, read_only: bool = False) -> "BlockIndex":
        """The index file at path. Read-only, it is opened read-only and its blocks are copied
        into memory: what recovery records there (blocks found after the checkpoint, a
        rebuild) never reaches the disk."""
        if read_only:
            return await cls._open_copy(path)
        created = not os.path.exists(path) or os.path.getsize(path) == 0
        try:
            db = await cls._connect(path)
        except aiosqlite.DatabaseError as e:
            # A damaged index is rebuilt from what the ring files still hold.
            aside = f"{path}.corrupt"
            log.error("block index %s is unreadable (%s); moved to %s, starting a new one",
                      path, e, aside)
            for suffix in ("", "-journal"):
                if os.path.exists(path + suffix):
                    os.replace(path + suffix, aside + suffix)
            db = await cls._connect(path)
            created = True
        return cls(db, path, created)

    @classmethod
    async def _open_copy(cls, path: str) -> "BlockIndex":
        # The file is attached read-only (SQLite writes nothing to it, not even a journal).
        # What recovery may change (buckets, cursors) is copied into memory; the series rows,
        # never written by a reader, are read from the file, and so are the blocks (a month
        # of them is about 15 MB in memory) until recovery or a repair changes them: then
        # they are copied too (_own_blocks).
        db = await aiosqlite.connect(":memory:", uri=True)   # (uri: ATTACH takes the mode)
        await db.executescript(_SCHEMA)
        created = True
        series_table = "series"
        blocks_on_file = False
        if os.path.exists(path) and os.path.getsize(path) > 0:
            try:
                await db.execute("ATTACH DATABASE ? AS disk",
                                 (f"file:{urllib.parse.quote(path)}?mode=ro",))
                await cls._check(db, "disk")
                async with db.execute("SELECT name FROM disk.sqlite_master "
                                      "WHERE type = 'table'") as cur:
                    present = {name for (name,) in await cur.fetchall()}
                for table in _COPIED_READ_ONLY:
                    if table in present:   # (a store from before the table has none)
                        await db.execute(f"INSERT INTO main.{table} SELECT * FROM disk.{table}")
                # Unqualified names find the temp schema first: reads of "blocks" read the file.
                await db.execute("CREATE TEMP VIEW blocks AS SELECT * FROM disk.blocks")
                blocks_on_file = True
                series_table = "disk.series"
                created = False
            except aiosqlite.DatabaseError as e:
                log.error("block index %s is unreadable (%s); the rings are indexed again in "
                          "memory (the file is left as it is)", path, e)
                await db.close()
                db = await aiosqlite.connect(":memory:")
                await db.executescript(_SCHEMA)
                blocks_on_file = False
        await db.commit()
        index = cls(db, path, created)
        index._series_table = series_table
        index._blocks_on_file = blocks_on_file
        index._native_path = path if blocks_on_file else None
        return index

    async def _own_blocks(self) -> None:
        """Before a change to the blocks of a read-only open: copies them from the file into
        memory, where the change stays."""
        if self._blocks_on_file:
            self._native_path = None   # the copy in memory is what queries must see now
            self.close_readers()
            await self._db.execute("DROP VIEW temp.blocks")
            await self._db.execute("INSERT INTO main.blocks SELECT * FROM disk.blocks")
            await self._db.commit()
            self._blocks_on_file = False

    @staticmethod
    async def _check(db: aiosqlite.Connection, schema: str = "main") -> None:
        async with db.execute(f"PRAGMA {schema}.quick_check") as cur:
            row = await cur.fetchone()
        if row is None or row[0] != "ok":
            raise aiosqlite.DatabaseError(f"quick_check: {row}")

    @staticmethod
    async def _connect(path: str) -> aiosqlite.Connection:
        db = await aiosqlite.connect(path)
        try:
            # The rollback journal is kept between transactions, its header zeroed at each
            # commit (PERSIST): emptying it (TRUNCATE) freed its blocks and the next
            # transaction allocated them again, metadata that each sync made the file
            # system's journal write. A transaction that grew it past the limit (an index
            # rebuild) cuts it back. A reader (the C index reader, a read-only open) treats
            # a journal with a zeroed header as no journal, as it did an empty one.
            await db.execute("PRAGMA journal_mode=PERSIST")
            await db.execute(f"PRAGMA journal_size_limit={_JOURNAL_SIZE_LIMIT}")
            await db.execute("PRAGMA synchronous=FULL")
            await db.executescript(_SCHEMA)
            await BlockIndex._check(db)
            await db.commit()
        except Exception:
            await db.close()
            raise
        return db

    async def close(self) -> None:
        self._native_path = None
        self.close_readers()
        await self._db.close()

    def native_reader(self) -> IndexReader | None:
        """A C reader of the blocks table (:class:`IndexReader`, for any thread; give it back
        with :meth:`release_reader`), or None when the blocks are read through this
        connection only: a read-only open that copied them into memory, or SQLite not
        reachable from C. A reader sees what is committed to the file, as another process
        would; the blocks not yet indexed are the caller's to add, as for
        :meth:`block_refs`."""
        path = self._native_path
        if path is None:
            return None
        try:
            return self._readers.pop()
        except IndexError:
            pass
        try:
            return IndexReader.open(path, _READER_BUSY_MS)
        except StoreError as e:
            if self._native_path is not None:
                log.warning("%s; the block lists are read through Python", e)
            self._native_path = None
            return None

    def release_reader(self, reader: IndexReader) -> None:
        if self._native_path is None:
            reader.close()
        else:
            self._readers.append(reader)

    def close_readers(self) -> None:
        while self._readers:
            self._readers.pop().close()

    async def load_bucket(self, name: str) -> BucketState:
        db = self._db
        await db.execute("INSERT OR IGNORE INTO buckets (name) VALUES (?)", (name,))
        await db.commit()
        async with db.execute(f"SELECT id, write_pos, next_seq, {', '.join(COUNTERS)} "
                              "FROM buckets WHERE name = ?", (name,)) as cur:
            row = await _one_row(cur)
        bid, write_pos, next_seq, *counts = row
        async with db.execute(f"SELECT COUNT(*) FROM {self._series_table} WHERE bucket = ?",
                              (bid,)) as cur:
            (series_count,) = await _one_row(cur)
        state = BucketState(bid, write_pos, next_seq, dict(zip(COUNTERS, counts)), series_count)
        span = await self.refresh_totals(state)
        # From here on the rows' spans widen it as they are committed. (A difference that
        # overflows 64 bits comes as a float: then no bound.)
        self._widen_span(bid, MAX_TIME_NS if isinstance(span, float) else span or 0)
        async with db.execute("SELECT name, seq FROM replication_cursors WHERE bucket = ?",
                              (bid,)) as cur:
            state.cursors = {n: s for n, s in await cur.fetchall()}
        return state

    async def series_rows(self, bucket_id: int,
                          batch: int = 8192) -> AsyncIterator[list[tuple[int, int, str, int]]]:
        """The bucket's series as (id, type, key, sealed_lsn), by id, ``batch`` rows at a time."""
        async with self._db.execute(f"SELECT id, type, key, sealed_lsn FROM {self._series_table} "
                                    "WHERE bucket = ? ORDER BY id", (bucket_id,)) as cur:
            while rows := await cur.fetchmany(batch):
                yield [tuple(r) for r in rows]

    async def refresh_totals(self, state) -> int | float | None:
        """Counts the bucket's rows into ``state``; the longest span of a row (None: no rows;
        a float: more than 64 bits)."""
        async with self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(length), 0), COALESCE(SUM(n), 0), MIN(min_ts), "
                "MAX(max_ts), MIN(max_ts), MAX(max_ts - min_ts) FROM blocks WHERE bucket = ?",
                (state.id,)) as cur:
            (state.live_blocks, state.live_bytes, state.live_points, state.oldest,
             state.newest, state.first_block_end, span) = await _one_row(cur)
        return span

    def _widen_span(self, bucket_id: int, span: int) -> None:
        """Makes the bucket's longest block span at least ``span``: before the rows that
        have it are committed, so a reader that sees them has the wider bound."""
        if span > self._spans.get(bucket_id, -1):
            self._spans[bucket_id] = span

    def max_ts_bound(self, bucket_id: int, stop: int) -> int:
        """The latest max_ts of a row that may hold points before ``stop``: the longest span
        of the bucket's blocks after it (a block that starts before stop ends by then). A
        range in the past then reads the rows of its own blocks, not every row after its
        start. The bound never narrows (evicted blocks leave it as it was); before the
        bucket is loaded it is the largest time. A reader takes it together with the
        blocks not indexed yet: a row committed after that is one of those blocks."""
        span = self._spans.get(bucket_id)
        return MAX_TIME_NS if span is None else min(stop - 1 + span, MAX_TIME_NS)

    async def usage_beyond(self, bucket_id: int, capacity: int) -> tuple[int, int]:
        """(blocks, points) that a ring cut to capacity would no longer hold."""
        async with self._db.execute("SELECT COUNT(*), COALESCE(SUM(n), 0) FROM blocks WHERE "
                                    "bucket = ? AND offset + length > ?",
                                    (bucket_id, capacity)) as cur:
            blocks, points = await _one_row(cur)
            return blocks, points

    async def usage_older(self, bucket_id: int, cutoff: int) -> tuple[int, int]:
        """(blocks, points) whose newest point is older than cutoff: what retention drops."""
        async with self._db.execute("SELECT COUNT(*), COALESCE(SUM(n), 0) FROM blocks WHERE "
                                    "bucket = ? AND max_ts < ?", (bucket_id, cutoff)) as cur:
            blocks, points = await _one_row(cur)
            return blocks, points

    async def repair(self, bucket_id: int, found: dict, below_seq: int,
                     expire_before: int | None, overwritten) -> RepairResult:
        """Makes a bucket's rows agree with ``found`` (every valid ring entry by sequence
        number, from a full scan), for blocks below ``below_seq`` (what checkpoints indexed).
        Entries older than the oldest row that agrees are evicted, those that end before
        ``expire_before`` expired: neither is indexed again. Rows for which
        ``overwritten(row)`` holds are left to the next checkpoint. One transaction."""
        await self._own_blocks()
        db = self._db
        res = RepairResult()
        async with db.execute("SELECT seq, series, min_ts, max_ts, offset, length, n FROM blocks "
                              "WHERE bucket = ?", (bucket_id,)) as cur:
            rows = [BlockRow(*r) for r in await cur.fetchall()]

        def agrees(r: BlockRow, e) -> bool:
            return (r.series, r.min_ts, r.max_ts, r.offset, r.length, r.count) == (
                e.series_id, e.min_ts, e.max_ts, e.offset, e.length, e.count)

        good = [r.seq for r in rows if r.seq in found and agrees(r, found[r.seq])]
        oldest = min(good) if good else min(found, default=below_seq)
        fix, drop, lost = [], [], 0
        at = {e.offset for e in found.values()}
        for r in rows:
            e = found.get(r.seq)
            if e is not None and e.seq < below_seq:
                if not agrees(r, e):
                    fix.append(e)
            elif not overwritten(r):
                drop.append(r.seq)
                # A row whose seq was wrong still pointed at a block (indexed again below);
                # one that points at no entry had its block damaged.
                lost += r.offset not in at
        indexed = {r.seq for r in rows}
        add = [e for s, e in found.items() if oldest <= s < below_seq and s not in indexed
               and (expire_before is None or e.max_ts >= expire_before)]
        try:
            if drop:
                await db.executemany("DELETE FROM blocks WHERE bucket = ? AND seq = ?",
                                     [(bucket_id, s) for s in drop])
                await db.execute("UPDATE buckets SET corrupt_blocks = corrupt_blocks + ? "
                                 "WHERE id = ?", (lost, bucket_id))
            if fix or add:
                self._widen_span(bucket_id, max(e.max_ts - e.min_ts for e in fix + add))
                await db.executemany(
                    "INSERT OR REPLACE INTO blocks (bucket, seq, series, min_ts, max_ts, offset, "
                    "length, n) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(bucket_id, e.seq, e.series_id, e.min_ts, e.max_ts, e.offset, e.length,
                      e.count) for e in fix + add])
            await db.commit()
        except aiosqlite.Error as e:
            await db.rollback()
            raise StoreError(f"cannot repair the block index {self.path}: {e}") from e
        res.corrected, res.restored, res.dropped = len(fix), len(add), lost
        return res

    async def drop_beyond(self, bucket_id: int, capacity: int) -> tuple[int, int]:
        """Forgets the blocks a shrunk ring file no longer holds, counting them as evicted;
        returns (blocks, points)."""
        if self._blocks_on_file and (await self.usage_beyond(bucket_id, capacity))[0] == 0:
            return 0, 0   # nothing to forget: the blocks stay on the file
        await self._own_blocks()
        async with self._db.execute("DELETE FROM blocks WHERE bucket = ? AND offset + length > ? "
                                    "RETURNING n", (bucket_id, capacity)) as cur:
            rows = list(await cur.fetchall())
        blocks, points = len(rows), sum(n for (n,) in rows)
        if blocks:
            await self._db.execute("UPDATE buckets SET evicted_blocks = evicted_blocks + ?, "
                                   "evicted_points = evicted_points + ? WHERE id = ?",
                                   (blocks, points, bucket_id))
        await self._db.commit()
        return blocks, points

    async def commit(self, bucket_id: int, pending: list, new_series: Iterable, sealed: dict[int, int],
                     position: tuple[int, int], previous_pos: int, capacity: int,
                     expire_before: int | None,
                     forwarded_seq: int | None, corrupt_seqs: list[int]) -> CommitResult:
        """Applies one batch: evicts what the new blocks overwrote, inserts them, records new
        series and sealed LSNs, expires old blocks, stores the ring checkpoint; one transaction."""
        await self._own_blocks()
        db = self._db
        res = CommitResult()

        def count_gone(rows, kind: str) -> None:
            for seq, n, length, series, max_ts in rows:
                res.gone.append((series, max_ts))
                setattr(res, f"{kind}_blocks", getattr(res, f"{kind}_blocks") + 1)
                setattr(res, f"{kind}_points", getattr(res, f"{kind}_points") + n)
                setattr(res, f"{kind}_bytes", getattr(res, f"{kind}_bytes") + length)
                if forwarded_seq is not None and seq > forwarded_seq:
                    res.dropped_unforwarded += n

        try:
            events = write_events(pending, previous_pos, capacity)
            kept, lost = surviving(events)
            count_gone([(e.seq, e.count, e.length, e.series_id, e.max_ts) for e in lost], "evicted")
            # Older blocks go oldest first for as long as the new writes overlap them (the
            # ring's live blocks are one run of sequence numbers, so this needs no offset index).
            while events:
                async with db.execute("SELECT seq, n, length, offset, series, max_ts FROM blocks "
                                      "WHERE bucket = ? ORDER BY seq LIMIT 256", (bucket_id,)) as cur:
                    rows = await cur.fetchall()
                gone = []
                for seq, n, length, offset, series, max_ts in rows:
                    if not _overlaps(events, offset, offset + length):
                        break
                    gone.append((seq, n, length, series, max_ts))
                if gone:
                    await db.execute("DELETE FROM blocks WHERE bucket = ? AND seq <= ?",
                                     (bucket_id, gone[-1][0]))
                    count_gone(gone, "evicted")
                if len(gone) < 256:
                    break
            if kept:
                self._widen_span(bucket_id, max(e.max_ts - e.min_ts for e in kept))
                await db.executemany(
                    "INSERT OR REPLACE INTO blocks (bucket, seq, series, min_ts, max_ts, offset, length, n) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(bucket_id, e.seq, e.series_id, e.min_ts, e.max_ts, e.offset, e.length, e.count)
                     for e in kept])
                res.added_blocks = len(kept)
                res.added_points = sum(e.count for e in kept)
                res.added_bytes = sum(e.length for e in kept)
            # new_series may be a generator: rows are made as SQLite takes them
            await db.executemany("INSERT OR IGNORE INTO series (bucket, id, type, key) "
                                 "VALUES (?, ?, ?, ?)",
                                 ((bucket_id, sid, t, key) for sid, t, key in new_series))
            if sealed:
                await db.executemany("UPDATE series SET sealed_lsn = MAX(sealed_lsn, ?) "
                                     "WHERE bucket = ? AND id = ?",
                                     [(lsn, bucket_id, sid) for sid, lsn in sealed.items()])
            if expire_before is not None:
                async with db.execute("DELETE FROM blocks WHERE bucket = ? AND max_ts < ? "
                                      "RETURNING seq, n, length, series, max_ts",
                                      (bucket_id, expire_before)) as cur:
                    count_gone(await cur.fetchall(), "expired")
            corrupt = 0
            for seq in corrupt_seqs:
                async with db.execute("DELETE FROM blocks WHERE bucket = ? AND seq = ? RETURNING seq",
                                      (bucket_id, seq)) as cur:
                    corrupt += len(list(await cur.fetchall()))
            await db.execute(
                "UPDATE buckets SET write_pos = ?, next_seq = ?, evicted_blocks = evicted_blocks + ?, "
                "evicted_points = evicted_points + ?, expired_blocks = expired_blocks + ?, "
                "expired_points = expired_points + ?, dropped_unforwarded = dropped_unforwarded + ?, "
                "corrupt_blocks = corrupt_blocks + ? WHERE id = ?",
                (position[0], position[1], res.evicted_blocks, res.evicted_points, res.expired_blocks,
                 res.expired_points, res.dropped_unforwarded, corrupt, bucket_id))
            await db.commit()
        except aiosqlite.Error as e:
            await db.rollback()
            raise StoreError(f"cannot update the block index {self.path}: {e}") from e
        return res

    async def blocks(self, bucket_id: int, series_id: int, start: int, stop: int) -> list[BlockRow]:
        """Live blocks of a series that may hold points in [start, stop), oldest write first."""
        async with self._db.execute(
                "SELECT seq, series, min_ts, max_ts, offset, length, n FROM blocks "
                "WHERE bucket = ? AND series = ? AND max_ts >= ? AND max_ts <= ? AND min_ts < ? "
                "ORDER BY seq",
                (bucket_id, series_id, start, self.max_ts_bound(bucket_id, stop), stop)) as cur:
            return [BlockRow(*r) for r in await cur.fetchall()]

    async def blocks_of(self, bucket_id: int, series_ids: list[int], start: int,
                        stop: int) -> list[BlockRow]:
        """:meth:`blocks` of several series in one query, by series then oldest write first."""
        if len(series_ids) == 1:
            return await self.blocks(bucket_id, series_ids[0], start, stop)
        if not series_ids:
            return []
        out = []
        bound = self.max_ts_bound(bucket_id, stop)
        for i in range(0, len(series_ids), _IN_CHUNK):
            part = series_ids[i:i + _IN_CHUNK]
            async with self._db.execute(
                    "SELECT seq, series, min_ts, max_ts, offset, length, n FROM blocks "
                    f"WHERE bucket = ? AND series IN ({', '.join('?' * len(part))}) "
                    "AND max_ts >= ? AND max_ts <= ? AND min_ts < ? ORDER BY series, seq",
                    (bucket_id, *part, start, bound, stop)) as cur:
                out += [BlockRow(*r) for r in await cur.fetchall()]
        return out

    async def block_refs(self, bucket_id: int, series_ids: list[int], start: int,
                         stop: int) -> dict[int, array]:
        """For each series, its live blocks that may hold points in [start, stop), in order
        of (min_ts, seq), as array('q') of (seq, offset, length, min_ts, max_ts): 40 bytes a
        block, so a month of blocks of many series costs no row objects (the window fold's
        input)."""
        out = {sid: array("q") for sid in series_ids}
        bound = self.max_ts_bound(bucket_id, stop)
        for i in range(0, len(series_ids), _IN_CHUNK):
            part = series_ids[i:i + _IN_CHUNK]
            async with self._db.execute(
                    "SELECT series, seq, offset, length, min_ts, max_ts FROM blocks "
                    f"WHERE bucket = ? AND series IN ({', '.join('?' * len(part))}) "
                    "AND max_ts >= ? AND max_ts <= ? AND min_ts < ? ORDER BY series, min_ts, seq",
                    (bucket_id, *part, start, bound, stop)) as cur:
                # Rows go to their series a fetch at a time: the lists are built once, not
                # gathered whole and then cut (a month of blocks would be held twice).
                while True:
                    rows = list(await cur.fetchmany(_REF_FETCH))
                    fetched = len(rows)
                    # packed row by row in C (struct), not value by value
                    flat = array("q", b"".join(itertools.starmap(_REF_ROW.pack, rows)))
                    del rows
                    series = flat[0::6]
                    del flat[0::6]
                    a = 0
                    while a < len(series):
                        z = bisect.bisect_right(series, series[a], a)
                        out[series[a]].extend(flat[5 * a:5 * z])
                        a = z
                    if fetched < _REF_FETCH:
                        break   # the last rows: no trip to the database thread for none
        return out

    async def blocks_after(self, bucket_id: int, after_seq: int, limit: int) -> list[BlockRow]:
        async with self._db.execute(
                "SELECT seq, series, min_ts, max_ts, offset, length, n FROM blocks "
                "WHERE bucket = ? AND seq > ? ORDER BY seq LIMIT ?",
                (bucket_id, after_seq, limit)) as cur:
            return [BlockRow(*r) for r in await cur.fetchall()]

    async def newest_block_ts(self, bucket_id: int, series_id: int) -> int | None:
        async with self._db.execute("SELECT MAX(max_ts) FROM blocks WHERE bucket = ? AND series = ?",
                                    (bucket_id, series_id)) as cur:
            return (await _one_row(cur))[0]

    async def rename_series(self, bucket_id: int, renames: list[tuple[int, str]]) -> None:
        """New keys for series ids, in one transaction (the key escaping migration)."""
        await self._db.executemany("UPDATE series SET key = ? WHERE bucket = ? AND id = ?",
                                   [(key, bucket_id, sid) for sid, key in renames])
        await self._db.commit()

    async def set_cursors(self, bucket_id: int, cursors: dict[str, int]) -> None:
        """Several streams' cursors of a bucket, in one transaction."""
        try:
            await self._db.executemany("INSERT OR REPLACE INTO replication_cursors "
                                       "(name, bucket, seq) VALUES (?, ?, ?)",
                                       [(name, bucket_id, seq) for name, seq in cursors.items()])
            await self._db.commit()
        except aiosqlite.Error as e:
            await self._db.rollback()
            raise StoreError(f"cannot update the block index {self.path}: {e}") from e

    async def set_cursor(self, name: str, bucket_id: int, seq: int | None) -> None:
        if seq is None:
            await self._db.execute("DELETE FROM replication_cursors WHERE name = ? AND bucket = ?",
                                   (name, bucket_id))
        else:
            await self._db.execute("INSERT OR REPLACE INTO replication_cursors (name, bucket, seq) "
                                   "VALUES (?, ?, ?)", (name, bucket_id, seq))
        await self._db.commit()


async def _one_row(cur: aiosqlite.Cursor) -> aiosqlite.Row:
    """The row of a query that always has one (an aggregate, a row just inserted)."""
    row = await cur.fetchone()
    assert row is not None, "an aggregate query returned no row"
    return row
