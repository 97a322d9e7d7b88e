"""Reading the store: the catalogue's series, and a series' points from blocks and head.

A series' points live in three places: sealed blocks in the index, blocks sealed since the last
checkpoint (the bucket's pending list) and the head (on the store thread). :class:`StoreReader`
reads the blocks on the read thread, copies the head on the store thread and merges them in
time order; where one timestamp was written more than once, the last write wins.

:meth:`StoreReader.stream` is the streaming form for queries: it picks the blocks by their time
bounds (no block outside the range is read or decoded) and yields the points in time order in
batches of about :data:`BATCH_POINTS`, so memory in flight is one batch per series, however long
the range. Blocks whose spans overlap (late or redelivered points) are merged as one run; the
others are taken as they are (a sealed block is sorted and free of duplicates).
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import concurrent.futures
import contextlib
import logging
import threading
from array import array
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence

from gateway import codec
from gateway.aggregate import (FOLD_BAD_BLOCK, FOLD_OK, REF_WORDS, BatchFold, BlockFold,
                               FoldedMany, FoldedWindows, FoldSpec, UnorderedPoints)
from gateway.datamodel import (BOOL, COLUMN_TYPECODES, FLOAT, INT, MAX_TIME_NS, MIN_TIME_NS, STRING,
                                UINT, WORD_TYPECODES, escape_field_key, escape_key,
                                escape_measurement)
from gateway.errors import CorruptBlock, StoreError
from gateway.store.bucket import Bucket, HeadPoints
from gateway.store.series_table import SeriesInfo, key_parts
from gateway.store.index import BlockIndex
from gateway.store.native import OK, IndexReader, gather64, merge_order
from gateway.store.threads import FOLD_THREADS, StoreThreads

log = logging.getLogger("gateway.store")

# Value columns held as 64-bit words in heads and blocks.
_WORD_COLUMNS = {t: WORD_TYPECODES[t] for t in (FLOAT, INT, UINT)}
MIN_TS, MAX_TS = MIN_TIME_NS, MAX_TIME_NS

#: (sequence number, offset, length) of a block in the ring.
BlockRef = tuple[int, int, int]
#: A block to read, with the ring position (and bytes written) from which a later write may
#: have overwritten it.
_Read = tuple[int, int, int, tuple[int, int | None]]
#: Points per batch that :meth:`StoreReader.stream` yields (many blocks per C call, bounded memory).
BATCH_POINTS = 65536
_HEAD_SEQ = 1 << 62   # the head is newer than every block
_NO_HEAD = HeadPoints(array("q"), None, None)
#: A fold thread lists the blocks of up to LIST_SERIES series in one read transaction of the
#: index, stopping after LIST_ROWS rows (the writer waits for its end, and the lists listed
#: ahead take memory): long series are listed one at a time.
LIST_SERIES, LIST_ROWS = 16, 4096
#: The listed series are folded in batches of one C call (:class:`BatchFold`) of up to
#: BATCH_BLOCKS blocks, at least one series: short series many at once (a call, not a dozen,
#: a series), long ones one at a time, so that the fold threads share a trip of long series.
BATCH_BLOCKS = 64


@dataclass(slots=True)
class _Piece:
    """A block (or the head) of a series, with its time bounds, as a streaming read plans it."""

    seq: int
    min_ts: int
    max_ts: int
    count: int
    ref: _Read | None   # None: the head


@dataclass(slots=True)
class _Listed:
    """Series of a fold trip with their block lists: series j's blocks are blocks at[j] to
    at[j + 1] of refs (:data:`REF_WORDS` words a block)."""

    jobs: list[tuple[SeriesInfo, int]]   # (series, its job number: the place of its head)
    refs: array   # 'q'
    at: array     # 'I', one more entry than jobs

    def refs_of(self, j: int) -> array:
        return self.refs[REF_WORDS * self.at[j]:REF_WORDS * self.at[j + 1]]

    def batches(self, most: int) -> list["_Listed"]:
        """Runs of its series of up to ``most`` blocks (at least one series each)."""
        out = []
        j, n = 0, len(self.jobs)
        while j < n:
            end = j + 1
            while end < n and self.at[end + 1] - self.at[j] <= most:
                end += 1
            if j == 0 and end == n:
                return [self]
            base = self.at[j]
            out.append(_Listed(self.jobs[j:end],
                               self.refs[REF_WORDS * base:REF_WORDS * self.at[end]],
                               array("I", (x - base for x in self.at[j:end + 1]))))
            j = end
        return out


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


def matching_series(b: Bucket, measurement: str | None = None,
                    tags: Mapping[str, str] | None = None,
                    field: str | None = None) -> list[SeriesInfo]:
    """The bucket's series matching the predicate, by key."""
    return [info for chunk in matching_chunks(b, measurement, tags, field) for info in chunk]


def matching_chunks(b: Bucket, measurement: str | None = None,
                    tags: Mapping[str, str] | None = None, field: str | None = None,
                    chunk: int = 1000) -> Iterator[list[SeriesInfo]]:
    """:func:`matching_series` ``chunk`` series at a time. The ids are sorted by key up front
    (the series as they were then); a :class:`SeriesInfo` exists only for the series of the
    chunk in hand, so an export of a million series does not hold a million of them."""
    table = b.catalogue
    ids = table.sorted_ids_with(*_key_pieces(measurement, tags, field))
    confirm = measurement is not None or field is not None or bool(tags)
    out = []
    for at in range(0, len(ids), chunk):
        for info in table.infos(ids[at:at + chunk]):
            if confirm:   # the key bytes held the pieces: the parsed key decides
                m, t, f = key_parts(info.key)
                if measurement is not None and m != measurement:
                    continue
                if field is not None and f != field:
                    continue
                if tags:
                    tag_map = dict(t)
                    if any(tag_map.get(k) != v for k, v in tags.items()):
                        continue
            out.append(info)
            if len(out) >= chunk:
                yield out
                out = []
    if out:
        yield out


def _key_pieces(measurement: str | None, tags: Mapping[str, str] | None,
                field: str | None) -> tuple[bytes, bytes, tuple[bytes, ...]]:
    """(prefix, suffix, inner pieces) that the key of a series with this measurement, field
    and tags holds, escaped as :func:`gateway.datamodel.series_key` writes them: a cheap first
    test on the key bytes, before the key is parsed. A name that no key can hold (which the
    escaping refuses) gives no piece; the parsed key decides."""
    def encoded(text: str) -> bytes:
        return text.encode("utf-8", "surrogateescape")

    prefix, suffix, inner = b"", b"", []
    with contextlib.suppress(ValueError):
        if measurement is not None:
            prefix = encoded(escape_measurement(measurement))
    with contextlib.suppress(ValueError):
        if field is not None:
            suffix = b" " + encoded(escape_field_key(field))
    for k, v in (tags or {}).items():
        with contextlib.suppress(ValueError):
            inner.append(encoded(f",{escape_key(k, 'tag key')}={escape_key(v, 'tag value')}"))
    return prefix, suffix, tuple(inner)


class _FoldQueue:
    """The series of one :meth:`StoreReader.fold_many` trip, shared by the fold threads. A
    thread that finds no listed batch lists the next LIST_SERIES series at once (a read
    transaction of the index per series costs more than listing a short one) and cuts them
    into batches (:data:`BATCH_BLOCKS`); the threads take the batches one at a time, so that
    one slowed down folds fewer."""

    def __init__(self, jobs: list) -> None:
        self._todo = collections.deque(jobs)
        self._listed: collections.deque = collections.deque()
        self._listing = 0   # threads listing a batch now
        self._changed = threading.Condition()

    def next_batch(self, list_jobs: Callable[[list], tuple[list, list]]) -> _Listed | None:
        """The next listed batch, None when every job is taken; ``list_jobs(jobs)`` lists
        jobs and returns (the batches of those listed, the jobs it left for later)."""
        while True:
            with self._changed:
                while not self._listed:
                    jobs = [self._todo.popleft()
                            for _ in range(min(LIST_SERIES, len(self._todo)))]
                    if jobs:
                        self._listing += 1
                        break
                    if not self._listing:
                        return None
                    self._changed.wait()   # the last jobs are being listed
                else:
                    return self._listed.popleft()
            listed: list = []
            rest: list = []
            try:
                listed, rest = list_jobs(jobs)
            finally:
                with self._changed:
                    self._listing -= 1
                    self._listed.extend(listed)
                    self._todo.extendleft(reversed(rest))
                    self._changed.notify_all()


class StoreReader:
    def __init__(self, index: BlockIndex, threads: StoreThreads,
                 repair_index: Callable[[Bucket], Awaitable[None]]) -> None:
        self.index = index
        self.threads = threads
        self.repair_index = repair_index

    async def series_columns(self, b: Bucket, info: SeriesInfo, lo: int,
                             hi: int) -> SeriesColumns | None:
        """The points of a series with lo <= time < hi, or None when it has none there."""
        return (await self.many_columns(b, [info], lo, hi))[0]

    async def many_columns(self, b: Bucket, infos: list[SeriesInfo], lo: int,
                           hi: int) -> list[SeriesColumns | None]:
        """:meth:`series_columns` of each series, with one index query and one hop to each
        worker thread for all of them (an export of many small series pays no hop per
        series)."""
        ids = [info.id for info in infos]
        # The heads first, with the blocks sealed that the index may not hold yet: a point
        # sealed after the copy is in the copy (see Bucket.heads_on_thread).
        heads, sealed = await self.threads.on_store_thread(b.heads_on_thread, ids)
        blocks = await self._blocks_of(b, ids, lo, hi, sealed)
        if b.index_suspects:  # an index row led nowhere: repair the index, then read again
            await self.repair_index(b)
            blocks = await self._blocks_of(b, ids, lo, hi, sealed)
        return [merge(info, blocks[info.id], head, lo, hi) for info, head in zip(infos, heads)]

    async def _blocks_of(self, b: Bucket, ids: list[int], lo: int, hi: int,
                         sealed: list) -> dict[int, list[tuple[array, Any]]]:
        # Where the checkpoint stood before the rows are read: the ring may write over them
        # from there on (the next checkpoint then drops their rows).
        since = (b.state.write_pos, b.written_at_checkpoint)
        unindexed = unindexed_blocks(b, sealed)
        rows = await self.index.blocks_of(b.state.id, ids, lo, hi)
        refs: dict[int, list[_Read]] = {sid: [] for sid in ids}
        seen = set()
        for r in rows:
            refs[r.series].append((r.seq, r.offset, r.length, since))
            seen.add(r.seq)
        for e in unindexed:
            if (e.series_id in refs and e.max_ts >= lo and e.min_ts < hi
                    and e.seq not in seen):
                refs[e.series_id].append((e.seq, e.offset, e.length, (e.offset + e.length, None)))
        for reads in refs.values():
            reads.sort()
        return await self.threads.on_read_thread(self._read_many, b, refs)

    @classmethod
    def _read_many(cls, b: Bucket, refs: dict[int, list[_Read]]) -> dict[int, list]:
        return {sid: cls.read_blocks(b, r) for sid, r in refs.items()}

    async def stream(self, b: Bucket, info: SeriesInfo, lo: int, hi: int,
                     batch_points: int | None = None) -> AsyncIterator[tuple[array, Any]]:
        """Yields (timestamps, values) of the series with lo <= time < hi in time order across
        batches, one point per timestamp (the last write wins); never an empty batch."""
        if lo >= hi:
            return
        batch_points = batch_points or BATCH_POINTS
        if b.index_suspects:   # an earlier read found a wrong index row: repair first
            await self.repair_index(b)
        # The head first (see many_columns); where the checkpoint stood before the rows are
        # read (see _blocks_of).
        head, sealed = await self.threads.on_store_thread(b.head_on_thread, info.id)
        since = (b.state.write_pos, b.written_at_checkpoint)
        unindexed = unindexed_blocks(b, sealed)
        rows = await self.index.blocks(b.state.id, info.id, lo, hi)
        seen = {r.seq for r in rows}
        pieces = [_Piece(r.seq, r.min_ts, r.max_ts, r.count, (r.seq, r.offset, r.length, since))
                  for r in rows]
        pieces += [_Piece(e.seq, e.min_ts, e.max_ts, e.count,
                          (e.seq, e.offset, e.length, (e.offset + e.length, None)))
                   for e in unindexed
                   if e.series_id == info.id and e.max_ts >= lo and e.min_ts < hi
                   and e.seq not in seen]
        if len(head.timestamps):
            pieces.append(_Piece(_HEAD_SEQ, min(head.timestamps), max(head.timestamps),
                                 len(head.timestamps), None))
        pieces.sort(key=lambda p: (p.min_ts, p.seq))
        # Runs of pieces whose spans overlap, each merged as one; a batch of runs per thread hop.
        batch: list[list[_Piece]] = []
        run: list[_Piece] = []
        batch_n, run_max = 0, MIN_TS
        for p in pieces:
            if run and p.min_ts > run_max:
                batch.append(run)
                batch_n += sum(q.count for q in run)
                run, run_max = [], MIN_TS
                if batch_n >= batch_points:
                    got = await self.threads.on_read_thread(self._read_runs, b, info, batch, head, lo, hi)
                    if got is not None:
                        yield got
                    batch, batch_n = [], 0
            run.append(p)
            run_max = max(run_max, p.max_ts)
        if run:
            batch.append(run)
        if batch:
            got = await self.threads.on_read_thread(self._read_runs, b, info, batch, head, lo, hi)
            if got is not None:
                yield got

    @classmethod
    def _read_runs(cls, b: Bucket, info: SeriesInfo, runs: list[list[_Piece]], head: HeadPoints,
                   lo: int, hi: int) -> tuple[array, Any] | None:
        """Reads, decodes and merges runs of pieces (read thread); (ts, values) or None."""
        out_ts = array("q")
        out_v: Any = [] if info.type == STRING else array(COLUMN_TYPECODES[info.type])
        for run in runs:
            refs = sorted(p.ref for p in run if p.ref is not None)   # oldest write first
            with_head = any(p.ref is None for p in run)
            blocks = cls.read_blocks(b, refs)
            if len(blocks) == 1 and not with_head:
                ts, values = blocks[0]
            else:
                cols = merge(info, blocks, head if with_head else _NO_HEAD, MIN_TS, MAX_TS)
                if cols is None:
                    continue
                ts, values = cols.timestamps, cols.values
            out_ts.extend(ts)
            out_v.extend(values)
        # Only the first and the last run can reach outside the range.
        a = bisect.bisect_left(out_ts, lo)
        z = bisect.bisect_left(out_ts, hi)
        if a or z < len(out_ts):
            out_ts, out_v = out_ts[a:z], out_v[a:z]
        return (out_ts, out_v) if len(out_ts) else None

    async def fold_many(self, b: Bucket, infos: list[SeriesInfo], lo: int, hi: int,
                        spec: FoldSpec, max_windows: int) -> FoldedMany:
        """The windows of each series' points with lo <= time < hi, aggregated in C straight
        from the ring blocks, with one copy of the heads and one trip to the fold threads for
        all of them; the block lists are read in C on the fold threads (several series in
        one read transaction), or with one index query. Series with plain data are folded
        many in one C call (:class:`gateway.aggregate.BatchFold`); the others each by a
        :class:`gateway.aggregate.BlockFold`: blocks that follow each other in time are
        folded in C, many per call, and a run of blocks that overlap (late or rewritten
        points) is merged first, as :meth:`stream` does. Per series (in the order of
        ``infos``): its windows, points folded and blocks listed (the blocks tell a caller
        how many series the next trip can take for the memory of their block lists); no
        windows where the series needs the general path: its head rewrites a stored
        timestamp, a block's points were not where the index said, or an index row led
        nowhere."""
        if lo >= hi or not infos:
            return FoldedMany.joined([(0, None, 0, 0, 0) for _ in infos])
        if b.index_suspects:
            await self.repair_index(b)
        ids = [info.id for info in infos]
        since = (b.state.write_pos, b.written_at_checkpoint)   # see _blocks_of
        # The heads are copied while the fold threads start, not in a hop of their own; a
        # fold thread waits for the copy before it reads the index, and adds the blocks that
        # came with it to those taken here (see Bucket.heads_on_thread).
        heads = self.threads.to_store_thread(b.heads_on_thread, ids)
        reader = self.index.native_reader()
        refs: dict[int, array | None]
        pending: dict[int, list] = {}
        if reader is not None:
            # The fold threads list each series' blocks in C as they come to it (the index
            # rows, and the blocks not indexed yet that have none), several at once.
            self.index.release_reader(reader)
            refs = dict.fromkeys(ids)
            pending = unindexed_by_series(b, ids, lo, hi)
        else:
            _, sealed = await asyncio.wrap_future(heads)
            unindexed = unindexed_by_series(b, ids, lo, hi, sealed)
            listed = await self.index.block_refs(b.state.id, ids, lo, hi)
            refs = {sid: with_unindexed(r, unindexed[sid]) if sid in unindexed else r
                    for sid, r in listed.items()}
        jobs = [(info, refs[info.id], pending.get(info.id, ()), k) for k, info in enumerate(infos)]
        # The fold threads take the series from one queue, the longest block lists first: a
        # thread that is slowed down (another process on its core) takes fewer.
        jobs.sort(key=lambda j: -len(j[1] or ()))
        queue = _FoldQueue(jobs)
        got = await self.threads.on_fold_threads(self._fold_jobs,
                                                 [queue] * min(FOLD_THREADS, len(jobs)), heads,
                                                 b, self.index, lo, hi, spec, max_windows, since)
        by_id = dict(got)
        return FoldedMany.joined([by_id[info.id] for info in infos])

    @staticmethod
    def _fold_jobs(queue: _FoldQueue, heads: concurrent.futures.Future, b: Bucket,
                   index: BlockIndex, lo: int, hi: int, spec: FoldSpec, max_windows: int,
                   since: tuple[int, int | None]) -> list:
        """Folds batches of series taken from ``queue`` (shared by the fold threads) until
        it is empty; (series id, (points, windows or None, its first window there, its
        windows, blocks listed)) of each. ``heads``: the copies of the series' heads, in the
        order of the jobs' numbers, and the blocks sealed that the index did not hold then
        (Bucket.heads_on_thread)."""
        out: list[tuple[int, tuple]] = []
        readers: list[IndexReader] = []   # this thread's, once it needs one
        fold = BatchFold(spec, lo, hi, max_windows)

        def list_jobs(jobs: list) -> tuple[list, list]:
            return StoreReader._list_jobs(jobs, readers, index, b, lo, hi, heads, out)

        try:
            while (listed := queue.next_batch(list_jobs)) is not None:
                StoreReader._fold_batch(listed, fold, heads, b, lo, hi, spec, max_windows,
                                        since, out)
        finally:
            for reader in readers:
                index.release_reader(reader)
        return out

    @staticmethod
    def _list_jobs(jobs: list, readers: list[IndexReader], index: BlockIndex, b: Bucket,
                   lo: int, hi: int, heads: concurrent.futures.Future,
                   out: list) -> tuple[list[_Listed], list]:
        """(the batches of ``jobs`` (info, refs or None, its blocks not indexed yet, job
        number) with their
        blocks, those not listed yet listed here in C in one read transaction; the jobs left
        for later once LIST_ROWS rows are listed). Series whose blocks cannot be listed go to
        ``out`` as ones for the general path."""
        if jobs[0][1] is not None:   # listed by the index's own connection
            refs, at = array("q"), array("I", [0])
            for _, listed, _, _ in jobs:
                refs += listed
                at.append(len(refs) // REF_WORDS)
            return _Listed([(j[0], j[3]) for j in jobs], refs, at).batches(BATCH_BLOCKS), []
        if not readers:
            first = index.native_reader()
            if first is None:   # the index stopped being readable from C
                out.extend((j[0].id, (0, None, 0, 0, 0)) for j in jobs)
                return [], []
            readers.append(first)
        # The index is read after the heads are copied, with the blocks sealed then and the
        # bound on max_ts taken after them (BlockIndex.max_ts_bound).
        sealed = _by_series(heads.result()[1], lo, hi)
        bound = index.max_ts_bound(b.state.id, hi)
        extra, extra_at = array("q"), array("I", [0])
        for info, _, entries, _ in jobs:
            for e in _with_missing(entries, sealed.get(info.id, ())):
                extra.extend((e.seq, e.offset, e.length, e.min_ts, e.max_ts))
            extra_at.append(len(extra) // REF_WORDS)
        try:
            refs, at = readers[0].block_refs_many(b.state.id, array("q", (j[0].id for j in jobs)),
                                                  lo, hi, bound, extra, extra_at, LIST_ROWS)
        except StoreError as e:
            log.warning("bucket %s: %s; %d series are read through Python", b.name, e,
                        len(jobs))
            out.extend((j[0].id, (0, None, 0, 0, 0)) for j in jobs)
            return [], []
        n = len(at) - 1
        listed = _Listed([(j[0], j[3]) for j in jobs[:n]], refs, at)
        return listed.batches(BATCH_BLOCKS), jobs[n:]

    @staticmethod
    def _fold_batch(listed: _Listed, fold: BatchFold, heads: concurrent.futures.Future,
                    b: Bucket, lo: int, hi: int, spec: FoldSpec, max_windows: int,
                    since: tuple[int, int | None], out: list) -> None:
        """Folds a batch of series in one C call, with their heads; each series that is not
        plain (a block damaged, gone or overlapping, a head out of order or rewriting a
        stored point, a read error) on its own (:meth:`_fold_job`), which deals with it."""
        copies = heads.result()[0]
        head_ts, head_words, head_at = array("q"), array("Q"), array("I", [0])
        for info, k in listed.jobs:
            head = copies[k]
            if len(head.timestamps):
                head_ts += head.timestamps
                # a boolean as merge() takes it: the low byte of its word
                head_words += array("Q", list(head.raw.tobytes()[::8])) if info.type == BOOL \
                    else head.raw
            head_at.append(len(head_ts))
        got = fold.fold(b.ring.ptr, bytes(info.type for info, _ in listed.jobs), listed.refs,
                        listed.at, head_ts, head_words, head_at)
        for j, (info, k) in enumerate(listed.jobs):
            blocks = listed.at[j + 1] - listed.at[j]
            if got is not None and got[0][j] >= 0:
                points, first, cols = got
                out.append((info.id, (points[j], cols, first[j], first[j + 1] - first[j],
                                      blocks)))
                continue
            points_j, own, blocks = StoreReader._fold_job(b, info, listed.refs_of(j), heads, k,
                                                          lo, hi, spec, max_windows, since)
            out.append((info.id, (points_j, own, 0, len(own) if own is not None else 0,
                                  blocks)))

    @staticmethod
    def _fold_job(b: Bucket, info: SeriesInfo, refs: array, heads: concurrent.futures.Future,
                  k: int, lo: int, hi: int, spec: FoldSpec, max_windows: int,
                  since: tuple[int, int | None]) -> tuple[int, FoldedWindows | None, int]:
        blocks = len(refs) // REF_WORDS
        fold = BlockFold(info.type, spec, lo, hi, max_windows)
        suspects = len(b.index_suspects)
        try:
            points = StoreReader._fold_series(b, info, fold, refs, lo, hi, since)
            head = heads.result()[0][k]
            if len(head.timestamps):
                cols = merge(info, [], head, lo, hi)
                if cols is not None:
                    points += fold.columns(cols.timestamps, _words(info, cols.values))
        except UnorderedPoints:
            return 0, None, blocks
        if len(b.index_suspects) != suspects:
            return 0, None, blocks   # the general path repairs the index first
        return points, fold.finish(), blocks

    @staticmethod
    def _fold_series(b: Bucket, info: SeriesInfo, fold: BlockFold, refs: array, lo: int,
                     hi: int, since: tuple[int, int | None]) -> int:
        """Folds a series' blocks (read thread): runs of blocks that follow each other in C,
        each run of blocks that overlap merged here first (the last write wins)."""
        n = len(refs) // REF_WORDS
        at = points = 0
        while at < n:
            try:
                got, done, status = fold.blocks(b.ring.ptr, refs, at)
            except OSError:
                raise b.ring.read_error() from None
            if status.count(FOLD_OK) != len(status):
                for k, st in enumerate(status):
                    seq, off, length = refs[REF_WORDS * (at + k):REF_WORDS * (at + k) + 3]
                    if st == FOLD_BAD_BLOCK:
                        note_damaged(b, seq, off, BlockFold.last_block_error())
                    elif st != FOLD_OK:
                        note_unreadable(b, seq, off, length, since)
            points += got
            at += done
            if at >= n:
                break
            end, run_max = at + 1, refs[REF_WORDS * at + 4]
            while end < n and refs[REF_WORDS * end + 3] <= run_max:
                run_max = max(run_max, refs[REF_WORDS * end + 4])
                end += 1
            run = sorted((refs[REF_WORDS * k], refs[REF_WORDS * k + 1], refs[REF_WORDS * k + 2],
                          since) for k in range(at, end))   # oldest write first
            cols = merge(info, StoreReader.read_blocks(b, run), _NO_HEAD, lo, hi)
            if cols is not None:
                points += fold.columns(cols.timestamps, _words(info, cols.values))
            at = end
        return points

    async def last(self, b: Bucket, info: SeriesInfo) -> tuple[int, Any] | None:
        """The newest point (time, value) of a series, or None.

        The heads keep the newest point of a series once it was asked for (not of string
        series): later calls answer from it without a thread hop while the heads are free.
        The first call, and the first after the point may have left the store (its block
        evicted or expired, its commit failed), reads the stored points and hands the heads
        their newest, which they combine with the points taken in the meantime."""
        if info.type != STRING:
            kept = b.newest_now(info.id)
            if kept is False:   # a commit holds the heads: ask behind it
                kept = await self.threads.on_store_thread(b.newest_on_thread, info.id)
            if isinstance(kept, tuple):
                return kept[0], value_of_word(kept[1], info.type)
        head, watch = await self.threads.on_store_thread(b.watch_on_thread, info.id)
        got = await self._read_last(b, info, head)
        if watch is not None and not watch[0]:
            point = None if got is None else (got[0], word_of_value(got[1], info.type))
            await self.threads.on_store_thread(b.fill_newest_on_thread, info.id, watch[1], point)
        return got

    async def _read_last(self, b: Bucket, info: SeriesInfo,
                         head: HeadPoints) -> tuple[int, Any] | None:
        """The newest stored point, read from the blocks that may hold it and the head."""
        unindexed = b.unindexed_blocks()
        newest = await self.index.newest_block_ts(b.state.id, info.id)
        pend = [e.max_ts for e in unindexed if e.series_id == info.id]
        candidates = [t for t in [newest, *pend] if t is not None]
        if head.timestamps:
            candidates.append(max(head.timestamps))
        if not candidates:
            return None
        # The candidates only bound the read from below: it sees whatever was sealed since.
        cols = await self.series_columns(b, info, max(candidates), MAX_TS)
        if cols is None or not len(cols):
            return None
        return cols.timestamps[-1], cols.values[-1]

    async def decoded_blocks(self, b: Bucket, refs: list[BlockRef]) -> list[tuple[array, Any] | None]:
        """Each block's (timestamps, values), or None where it is gone or damaged; one trip to
        the read thread for all of them."""
        def read() -> list[tuple[array, Any] | None]:
            out: list[tuple[array, Any] | None] = []
            for ref in refs:
                blocks = self.read_blocks(b, [ref])
                out.append(blocks[0] if blocks else None)
            return out

        return await self.threads.on_read_thread(read)

    @staticmethod
    def read_blocks(b: Bucket, refs: list[_Read] | list[BlockRef]) -> list[tuple[array, Any]]:
        """Decoded blocks (read thread). A block that the ring wrote over while it was read
        is skipped (evicted: counted as ``overwritten_while_read``); a damaged one is skipped,
        logged once and counted at the next checkpoint; a row of the index that leads to
        another entry is logged and left to :meth:`Checkpointer.repair_index`."""
        out = []
        for ref in refs:
            seq, offset, length = ref[:3]
            # without the reader's own checkpoint position, the current one (stricter)
            since = ref[3] if len(ref) > 3 else (b.state.write_pos, b.written_at_checkpoint)
            status, block = b.ring.read(offset, length, seq)
            if status == OK:
                try:
                    out.append(codec.decode(block))
                    continue
                except CorruptBlock as e:
                    note_damaged(b, seq, offset, str(e))
            else:
                note_unreadable(b, seq, offset, length, since)
        return out


def unindexed_blocks(b: Bucket, sealed: Sequence) -> list:
    """The bucket's blocks not indexed yet (:meth:`Bucket.unindexed_blocks`, taken now) with
    ``sealed``, those that came with a copy of the heads (:meth:`Bucket.heads_on_thread`)
    that the loop has not taken in yet."""
    return _with_missing(b.unindexed_blocks(), sealed)


def _with_missing(known: Sequence, more: Sequence) -> list:
    """The ring entries ``known`` and those of ``more`` whose seq is not among them."""
    if not more:
        return list(known)
    seqs = {e.seq for e in known}
    return [*known, *(e for e in more if e.seq not in seqs)]


def unindexed_by_series(b: Bucket, ids: list[int], lo: int, hi: int,
                        sealed: Sequence = ()) -> dict[int, list]:
    """The bucket's blocks not indexed yet (with ``sealed``: see :func:`unindexed_blocks`)
    that may hold points of the series ``ids`` in [lo, hi), by series (only series that have
    some). Taken before the index is read (see :meth:`Bucket.unindexed_blocks`)."""
    wanted = set(ids)
    return {sid: entries for sid, entries in _by_series(unindexed_blocks(b, sealed), lo,
                                                        hi).items() if sid in wanted}


def _by_series(entries: list, lo: int, hi: int) -> dict[int, list]:
    """Ring entries that may hold points in [lo, hi), by series."""
    out: dict[int, list] = {}
    for e in entries:
        if e.max_ts >= lo and e.min_ts < hi:
            out.setdefault(e.series_id, []).append(e)
    return out


def with_unindexed(refs: array, entries: list) -> array:
    """A series' block list from the index (:meth:`BlockIndex.block_refs`) with the blocks
    not indexed yet (ring entries) whose seq has no row, ordered by (min_ts, seq), as
    :meth:`gateway.store.native.IndexReader.block_refs` adds them in C."""
    seen = set(refs[0::REF_WORDS])
    blocks = [tuple(refs[i:i + REF_WORDS]) for i in range(0, len(refs), REF_WORDS)]
    blocks += [(e.seq, e.offset, e.length, e.min_ts, e.max_ts) for e in entries
               if e.seq not in seen]
    blocks.sort(key=lambda r: (r[3], r[0]))   # by min_ts, then oldest write first
    return array("q", (x for r in blocks for x in r))


def note_unreadable(b: Bucket, seq: int, offset: int, length: int,
                    since: tuple[int, int | None]) -> None:
    """Why block ``seq``'s entry could not be read, counted or logged (read thread): written
    over since ``since`` (evicted), a wrong index row (left to the index repair) or damage."""
    if b.overwritten_since(*since, offset, length):
        b.counters["overwritten_while_read"] += 1
    elif b.ring.entry_seq_at(offset) != seq:
        # Neither an overwrite nor this block's damaged entry: the index row is wrong.
        if seq not in b.index_suspects:
            b.index_suspects.add(seq)
            log.error("bucket %s: the index row of block %d (offset %d, %d bytes) leads "
                      "to no entry of that block; the index is checked against the "
                      "ring", b.name, seq, offset, length)
    else:
        note_damaged(b, seq, offset, "entry checksum mismatch")


def note_damaged(b: Bucket, seq: int, offset: int, why: str) -> None:
    """A damaged block, skipped: logged once, counted at the next checkpoint."""
    if seq not in b.corrupt_seqs:
        b.corrupt_seqs.add(seq)
        log.error("bucket %s: block %d at offset %d is damaged (%s); skipped",
                  b.name, seq, offset, why)


def _words(info: SeriesInfo, values: array) -> array:
    """A value column as 64-bit words (booleans widened) for :meth:`BlockFold.columns`."""
    return array("Q", values) if info.type == BOOL else values


def value_of_word(word: int, type_: int) -> Any:
    """A value of a numeric or boolean series from the 64-bit word heads keep it as, as a scan
    returns it (float, int, 0/1 for booleans)."""
    if type_ == BOOL:
        return word & 1
    return array(_WORD_COLUMNS[type_], array("Q", [word]).tobytes())[0]


def word_of_value(value: Any, type_: int) -> int:
    """The 64-bit word of a numeric or boolean value (the inverse of :func:`value_of_word`)."""
    if type_ == BOOL:
        return 1 if value else 0
    return array("Q", array(_WORD_COLUMNS[type_], [value]).tobytes())[0]


def merge(info: SeriesInfo, blocks: list[tuple[array, Any]], head: HeadPoints, lo: int,
          hi: int) -> SeriesColumns | None:
    """One series' blocks (oldest write first) and head as columns sorted by time, cut to
    lo <= time < hi; None when no point is left."""
    type_ = info.type
    parts_ts = [ts for ts, _ in blocks]
    parts_v = [v for _, v in blocks]
    if len(head.timestamps):
        parts_ts.append(head.timestamps)
        if type_ == STRING:
            parts_v.append(head.strings)
        elif type_ == BOOL:
            parts_v.append(array("B", head.raw.tobytes()[::8]) if head.raw else array("B"))
        else:
            assert head.raw is not None   # the head copy of a series of 64-bit values
            parts_v.append(array(_WORD_COLUMNS[type_], head.raw.tobytes()))
    if not parts_ts:
        return None
    ts = array("q")
    for p in parts_ts:
        ts.extend(p)
    # Blocks come oldest write first and the head last, so the last write of a timestamp
    # wins (a redelivered point replaces the earlier copy).
    order = merge_order(ts)
    ts = gather64(ts, order, "q")
    values: array | list[str]
    if type_ == STRING:
        strings = [v for p in parts_v for v in p]
        values = [strings[i] for i in order]
    else:
        column = array("B" if type_ == BOOL else _WORD_COLUMNS[type_])
        for p in parts_v:
            column.extend(p)
        if type_ == BOOL:
            values = array("B", (column[i] for i in order))
        else:
            values = gather64(column, order, _WORD_COLUMNS[type_])
    a = bisect.bisect_left(ts, lo)
    z = bisect.bisect_left(ts, hi)
    if a or z < len(ts):
        ts = ts[a:z]
        values = values[a:z]
    if not len(ts):
        return None
    return SeriesColumns(info, ts, values)
