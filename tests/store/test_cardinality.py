"""Series cardinality: a per-bucket series limit refuses new series with a counted, clear
error; heads of series that are written rarely give their memory back."""

from __future__ import annotations

import asyncio

from gateway.config.model import BucketConfig
from gateway.config.units import parse_size
from gateway.store import Store

from store_support import T0, make_batch, read_all, small_config

S = 10**9


def test_new_series_past_max_series_are_refused_and_counted(data_dir):
    config = small_config()
    config.buckets["raw"] = BucketConfig(parse_size("1MiB"), None, 3)

    async def go():
        async with Store(data_dir, config) as store:
            first = await store.write(make_batch([("m", {"h": str(i)}, "v", T0, 1.0)
                                                  for i in range(5)]))
            again = await store.write(make_batch([("m", {"h": "0"}, "v", T0 + S, 2.0),
                                                  ("m", {"h": "9"}, "v", T0 + S, 2.0)]))
            return first, again, await read_all(store), store.stats("raw")["raw"]
    first, again, got, stats = asyncio.run(go())
    assert (first.points, first.series_limited) == (3, 2)
    assert "max_series of 3 series" in first.problem and "'m,h=4 v'" in first.problem
    assert "[store.buckets.raw] max_series" in first.problem
    assert (again.points, again.series_limited) == (1, 1)   # old series still take points
    assert sorted(got) == ["m,h=0 v", "m,h=1 v", "m,h=2 v"]
    assert got["m,h=0 v"] == [(T0, 1.0), (T0 + S, 2.0)]
    assert stats["series_limited"] == 3 and stats["series"] == 3


def test_the_limit_holds_across_a_restart(data_dir):
    config = small_config()
    config.buckets["raw"] = BucketConfig(parse_size("1MiB"), None, 2)

    async def write(rows):
        async with Store(data_dir, config) as store:
            return await store.write(make_batch(rows))
    assert asyncio.run(write([("m", {"h": str(i)}, "v", T0, 1.0) for i in range(2)])).points == 2
    assert asyncio.run(write([("m", {"h": "new"}, "v", T0, 1.0)])).series_limited == 1


def test_one_point_series_cost_a_small_head(data_dir):
    async def go():
        async with Store(data_dir, small_config()) as store:
            await store.write(make_batch([("m", {"h": str(i)}, "v", T0, 1.0) for i in range(50)]))
            before = store.stats("raw")["raw"]["head_bytes"]
            await store.flush(seal=True)
            return before, store.stats("raw")["raw"]["head_bytes"]
    before, after = asyncio.run(go())
    assert before <= 50 * 16       # room for one point each
    assert after == 0              # sealed and empty: nothing kept


def test_a_head_that_grew_in_a_burst_shrinks_when_sealed_and_keeps_its_unlogged_tail(tmp_path):
    from array import array

    from gateway._native import lib
    from gateway.batch import Batch
    from gateway.store.native import Heads, RingFile, WriteAheadLog

    def batch(values):
        b = Batch()
        for v in values:
            b.add("m", {"h": "a"}, "v", float(v), T0 + v)
        return b

    def head_values(heads):
        ts, raw, _ = heads.head(1)
        return [t - T0 for t in ts], list(array("d", raw.tobytes()))

    ring = RingFile.create(str(tmp_path / "ring"), 1 << 20, None)
    wal, heads = WriteAheadLog(), Heads(8, 0)
    assert lib.gw_wal_create_segment(wal.ptr, str(tmp_path / "1.wal").encode(), 1, 0, 1 << 16,
                                     1_700_000_000) == 0
    heads.ingest(batch(range(100)).c_pointer, 0)   # a burst: room for 128 points
    heads.commit(wal, None, 0)
    heads.ingest(batch([1000, 1001, 1002]).c_pointer, 0)   # not logged: stays in the head
    heads.seal(ring, 0)
    assert head_values(heads) == ([1000, 1001, 1002], [1000.0, 1001.0, 1002.0])
    assert heads.counters()["head_bytes"] == 8 * 16   # shrunk to head_points
    heads.ingest(batch(range(2000, 2010)).c_pointer, 0)   # grows again from there
    assert head_values(heads) == ([1000, 1001, 1002, *range(2000, 2010)],
                                  [1000.0, 1001.0, 1002.0, *map(float, range(2000, 2010))])
    # the sizes of many heads in one call (a series id never made: 0)
    assert list(heads.head_points([1, 7, 1])) == [13, 0, 13]
    heads.commit(wal, None, 0)
    heads.seal(ring, 0, True)   # every point logged and sealed: an empty head
    assert list(heads.head_points([1])) == [0]
    for handle in (heads, wal, ring):
        handle.close()
