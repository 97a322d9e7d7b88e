"""The rollup bucket's defaults: its heads seal every 4 hours (a point a minute makes 240-point
blocks, not 15-point ones), and a ring of the default size holds a year of a default gateway's
rollups."""

from __future__ import annotations

import asyncio
import importlib.util
import pathlib
import time

import pytest

from gateway.config.model import BucketConfig, StoreSection
from gateway.config.units import parse_duration, parse_size
from gateway.store import Store

from store_support import T0, make_batch

BENCHMARK = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "rollup_size.py"


def test_a_bucket_seals_by_its_own_head_max_age(data_dir):
    config = StoreSection(wal_sync="always")
    config.buckets = {"raw": BucketConfig(parse_size("1MiB"), None),
                      "rollup": BucketConfig(parse_size("1MiB"), None,
                                             head_max_age=parse_duration("1ms"))}

    async def scenario():
        async with Store(data_dir, config) as store:
            rows = [("m", {}, "v", T0 + i * 60 * 10**9, float(i)) for i in range(10)]
            await store.write(make_batch(rows), "raw")
            await store.write(make_batch(rows), "rollup")
            time.sleep(0.01)   # the rollup heads are older than 1 ms, raw's far from 15 min
            await store.flush()
            return store.stats()

    stats = asyncio.run(scenario())
    assert stats["rollup"]["blocks"] == 1
    assert stats["raw"]["blocks"] == 0


def test_the_default_rollup_bucket_seals_every_4_hours_and_raw_every_15_minutes(data_dir):
    config = StoreSection()
    assert config.buckets["rollup"].head_max_age.ns == 4 * 3600 * 10**9
    assert config.buckets["raw"].head_max_age is None   # the store's 15 minutes
    # a point a minute: 240 points a head, within head_points, so blocks seal by age
    assert 4 * 60 < config.head_points
    for b in config.buckets.values():
        b.max_size = parse_size("1MiB")

    async def scenario():
        async with Store(data_dir, config) as store:
            return {name: store.bucket(name).head_max_age_ms for name in ("raw", "rollup")}

    assert asyncio.run(scenario()) == {"raw": 15 * 60_000, "rollup": 4 * 3600_000}


@pytest.mark.slow
def test_a_year_of_default_rollups_fits_the_default_ring_with_room_to_spare():
    spec = importlib.util.spec_from_file_location("rollup_size", BENCHMARK)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    got = asyncio.run(bench.measure(days=2))
    assert got["evicted_points"] == 0 and got["points"] == got["series"] * 1440 * 2
    # blocks of 240 points, not 15: a year of the 124 series takes under half the ring
    assert got["year_bytes"] < 0.5 * got["ring_size"], got
