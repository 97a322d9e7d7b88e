"""The window fold's block lists read from the index file in C (IndexReader) equal the rows the
index gives through Python (BlockIndex.block_refs) with the blocks not indexed yet added, on
random stores, each list in a read transaction of its own or many in one: blocks sealed since
the last checkpoint, overlapping and late writes, a ring small enough to evict, age retention,
a damaged index row before and after its repair, and a read-only open (which reads the file in
C until it copies the blocks into memory)."""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
from array import array
from types import SimpleNamespace

import pytest

from gateway.config.model import BucketConfig
from gateway.config.units import parse_duration, parse_size
from gateway.query import compile_query, run_query
from gateway.store import Access, Store
from gateway.store.reading import unindexed_by_series, with_unindexed

from store_support import T0, make_batch, small_config

S = 10**9
SERIES = 4


def _config():
    config = small_config(head_points=32)
    config.buckets["raw"] = BucketConfig(parse_size("64KiB"), parse_duration("1h"))
    return config


async def _compare(store: Store, rng: random.Random, ranges: int = 6) -> int:
    """Checks every series over random ranges (and the whole time axis); the blocks seen."""
    b = store.bucket("raw")
    index = store.index
    reader = index.native_reader()
    assert reader is not None
    seen = 0
    try:
        infos = [b.catalogue[sid] for sid in b.catalogue.sorted_ids()]
        ids = [info.id for info in infos]
        spans = [(-(1 << 63), (1 << 63) - 1)]
        for _ in range(ranges):
            lo = T0 + rng.randrange(-100, 3 * 3600) * S
            spans.append((lo, lo + rng.randrange(1, 3600) * S))
        for lo, hi in spans:
            pending = unindexed_by_series(b, ids, lo, hi)
            listed = await index.block_refs(b.state.id, ids, lo, hi)
            # the rows the range needs, found without the index's bound on max_ts
            for sid in ids:
                want = sorted((r for r in await _all_rows(index, b.state.id) if r[0] == sid
                               and r[5] >= lo and r[4] < hi), key=lambda r: (r[4], r[1]))
                assert listed[sid] == array("q", [x for r in want for x in r[1:]]), (sid, lo, hi)
            # each series' list in a call of its own (the writer commits between the spans)
            bound = index.max_ts_bound(b.state.id, hi)
            expected_all, extra_all, extra_at = [], array("q"), array("I", [0])
            for sid in ids:
                entries = list(pending.get(sid, []))
                if len(listed[sid]) and rng.random() < 0.5:
                    # a block both indexed and still listed as not (a checkpoint in progress)
                    seq, offset, length, min_ts, max_ts = listed[sid][-5:]
                    entries.append(SimpleNamespace(seq=seq, offset=offset, length=length,
                                                   min_ts=min_ts - 1, max_ts=max_ts))
                expected = with_unindexed(listed[sid], entries)
                extra = [x for e in entries
                         for x in (e.seq, e.offset, e.length, e.min_ts, e.max_ts)]
                got, at = reader.block_refs_many(b.state.id, array("q", [sid]), lo, hi, bound,
                                                 array("q", extra),
                                                 array("I", [0, len(extra) // 5]), 4096)
                assert list(at) == [0, len(got) // 5]
                assert got == expected, (sid, lo, hi)
                seen += len(got) // 5
                expected_all.append(expected)
                extra_all.extend(extra)
                extra_at.append(len(extra_all) // 5)
            # the lists of all the series in one call, up to a number of rows
            most = rng.choice([1, 8, 4096])
            refs, at = reader.block_refs_many(b.state.id, array("q", ids), lo, hi, bound,
                                              extra_all, extra_at, most)
            listed_n = len(at) - 1
            assert 1 <= listed_n <= len(ids)
            assert listed_n == len(ids) or at[-1] >= most
            assert at[-2] < most or listed_n == 1
            for k in range(listed_n):
                assert refs[5 * at[k]:5 * at[k + 1]] == expected_all[k], (k, lo, hi)
    finally:
        index.release_reader(reader)
    return seen


async def _all_rows(index, bucket_id: int) -> list[tuple]:
    """(series, seq, offset, length, min_ts, max_ts) of every block row of the bucket."""
    async with index._db.execute("SELECT series, seq, offset, length, min_ts, max_ts FROM blocks "
                                 "WHERE bucket = ?", (bucket_id,)) as cur:
        return [tuple(r) for r in await cur.fetchall()]


def _damage_a_row(data_dir: str, rng: random.Random) -> None:
    db = sqlite3.connect(os.path.join(data_dir, "store", "index.sqlite"))
    rows = db.execute("SELECT seq FROM blocks ORDER BY seq").fetchall()
    if rows:
        seq = rng.choice(rows)[0]
        db.execute("UPDATE blocks SET offset = (offset | 64) - (offset & 64) WHERE seq = ?",
                   (seq,))
        db.commit()
    db.close()


@pytest.mark.parametrize("seed", range(6))
def test_block_lists_read_in_c_equal_the_rows_read_through_python(data_dir, seed):
    rng = random.Random(seed)
    now = [T0 + 3600 * S]

    async def write_some(store: Store, rounds: int) -> None:
        for _ in range(rounds):
            rows = []
            for k in range(SERIES):
                start = rng.randrange(0, 3 * 3600)
                step = rng.choice([1, 1, 2, 7])
                for i in range(rng.randrange(1, 400)):
                    # late and repeated points make blocks whose spans overlap
                    rows.append(("m", {"s": str(k)}, "v", T0 + (start + step * i) * S,
                                 rng.uniform(-100, 100)))
            await store.write(make_batch(rows))
            if rng.random() < 0.3:
                await store.flush(seal=rng.random() < 0.5)   # a checkpoint: blocks indexed
            if rng.random() < 0.2:
                now[0] += rng.randrange(0, 1800) * S          # retention drops old blocks

    async def first() -> int:
        async with Store(data_dir, _config(), clock=lambda: now[0]) as store:
            seen = 0
            for _ in range(4):
                await write_some(store, 6)
                seen += await _compare(store, rng)
            return seen

    async def after_damage() -> None:
        async with Store(data_dir, _config(), clock=lambda: now[0]) as store:
            await _compare(store, rng)   # the wrong row, as both read it
            src = (f'from(bucket: "raw") |> range(start: {T0 // S - 100}, '
                   f'stop: {T0 // S + 4 * 3600}) |> aggregateWindow(every: 10m, fn: count)')
            await run_query(compile_query(src, now=now[0]), store)   # finds it, repairs
            await _compare(store, rng)
            await write_some(store, 3)
            await _compare(store, rng)

    assert asyncio.run(first()) > 0
    _damage_a_row(data_dir, rng)
    asyncio.run(after_damage())


def test_a_read_only_open_reads_the_file_in_c_until_it_copies_the_blocks(data_dir):
    async def build() -> None:
        async with Store(data_dir, small_config(head_points=32)) as store:
            await store.write(make_batch([("m", {"s": str(i % 3)}, "v", T0 + i * S, float(i))
                                          for i in range(600)]))
            await store.flush(seal=True)

    async def read_only() -> None:
        async with Store(data_dir, small_config(), access=Access.READ) as store:
            assert store.index._blocks_on_file
            assert await _compare(store, random.Random(1)) > 0
            await store.index._own_blocks()   # what recovery does before it changes a row
            assert store.index.native_reader() is None   # the copy in memory rules now

    asyncio.run(build())
    asyncio.run(read_only())


@pytest.mark.parametrize("seed", range(3))
def test_window_queries_give_the_same_tables_with_block_lists_from_c_or_python(data_dir, seed):
    rng = random.Random(seed)

    async def scenario():
        async with Store(data_dir, small_config(head_points=32)) as store:
            for n in range(8):
                rows = [("m", {"s": str(k)}, "v", T0 + rng.randrange(0, 3600) * S,
                         rng.uniform(-100, 100)) for k in range(SERIES) for _ in range(60)]
                await store.write(make_batch(rows))
                if n % 3 == 0:
                    await store.flush(seal=n % 2 == 0)   # indexed, unindexed and head points
            src = (f'from(bucket: "raw") |> range(start: {T0 // S}, stop: {T0 // S + 3600}) '
                   f'|> aggregateWindow(every: 5m, fn: sum, createEmpty: false)')
            tables = []
            for in_c in (True, False):
                if not in_c:
                    store.index._native_path = None   # as when the index is in memory
                    store.index.close_readers()
                results, ex = await run_query(compile_query(src, now=T0 + 3600 * S), store)
                tables.append([(t.key, list(t.data["_time"]), list(t.data["_value"]))
                               for t in results[0].tables])
                assert ex.series_folded > 0
            return tables

    in_c, in_python = asyncio.run(scenario())
    assert in_c == in_python and len(in_c) == SERIES


def test_a_range_in_the_past_finds_a_block_that_spans_far_beyond_it(data_dir):
    """The block lists read only the rows with max_ts up to the range's stop plus the longest
    span of a block; a block with a late point spans hours where the others span minutes, and
    is found by a range that ends long before its newest point: in the open that indexed it
    (the bound widened before its row was committed) and after a reopen (taken from the file)."""
    src = (f'from(bucket: "raw") |> range(start: {T0 // S}, stop: {T0 // S + 600}) |> count()')

    async def counts(store: Store) -> list:
        results, _ = await run_query(compile_query(src, now=T0 + 86400 * S), store)
        return sorted((t.key["s"], list(t.data["_value"])) for t in results[0].tables)

    async def first() -> list:
        async with Store(data_dir, small_config(head_points=32)) as store:
            # short blocks: 32 points a second apart, for two hours
            await store.write(make_batch([("m", {"s": "a"}, "v", T0 + i * S, 1.0)
                                          for i in range(7200)]))
            await store.flush(seal=True)
            assert await counts(store) == [("a", [600])]
            # a block of series b from its first minute to ten hours later
            await store.write(make_batch([("m", {"s": "b"}, "v", T0 + i * S, 2.0)
                                          for i in range(31)]
                                         + [("m", {"s": "b"}, "v", T0 + 36000 * S, 2.0)]))
            await store.flush(seal=True)
            return await counts(store)

    async def reopened() -> list:
        async with Store(data_dir, small_config(head_points=32)) as store:
            return await counts(store)

    assert asyncio.run(first()) == [("a", [600]), ("b", [31])]
    assert asyncio.run(reopened()) == [("a", [600]), ("b", [31])]
