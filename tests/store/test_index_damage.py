"""An index row that leads to another entry: repaired from the ring when it is the index that
is wrong (a flipped bit in index.sqlite), and told apart from a block that the ring wrote over
while it was read (an eviction, not damage)."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import sqlite3

import pytest

from gateway.config.model import BucketConfig
from gateway.config.units import parse_size
from gateway.store import Store

from store_support import T0, make_batch, read_all, small_config

S = 10**9


def rows_of(series: int, points: int, seed: int, t0: int = T0, measurement: str = "m"):
    rng = random.Random(seed)
    return [(measurement, {"s": str(k)}, "v", t0 + i * S, round(rng.uniform(-1e3, 1e3), 3))
            for k in range(series) for i in range(points)]


def build(data_dir: str) -> dict:
    async def go():
        async with Store(data_dir, small_config()) as store:
            await store.write(make_batch(rows_of(3, 300, 1)))
            await store.flush(seal=True)
            return await read_all(store)
    return asyncio.run(go())


def damage_index(data_dir: str, sql: str) -> None:
    db = sqlite3.connect(os.path.join(data_dir, "store", "index.sqlite"))
    seq = db.execute("SELECT seq FROM blocks ORDER BY seq LIMIT 1 OFFSET 4").fetchone()[0]
    db.execute(sql, (seq,))
    db.commit()
    db.close()


def open_read(data_dir: str) -> tuple[dict, dict]:
    async def go():
        async with Store(data_dir, small_config()) as store:
            return await read_all(store), store.stats("raw")["raw"]
    return asyncio.run(go())


@pytest.mark.parametrize("flip", [
    "UPDATE blocks SET seq = seq | 4096 WHERE seq = ?",        # a row now names another seq
    "UPDATE blocks SET offset = (offset | 64) - (offset & 64) WHERE seq = ?",  # another place
    "UPDATE blocks SET offset = (offset | 65536) - (offset & 65536) WHERE seq = ?",
])
def test_a_flipped_bit_in_the_index_is_counted_logged_and_repaired(data_dir, flip, caplog):
    written = build(data_dir)
    damage_index(data_dir, flip)
    with caplog.at_level(logging.ERROR, logger="gateway.store"):
        got, stats = open_read(data_dir)
    assert got == written, "a block the ring still holds was hidden"
    assert stats["index_repairs"] >= 1 and stats["corrupt_blocks"] == 0
    assert any("index checked against the ring" in r.getMessage() for r in caplog.records)
    got, stats = open_read(data_dir)       # the index on disk is repaired
    assert got == written and stats["index_repairs"] == 0


def test_a_block_overwritten_while_it_is_read_is_an_eviction_not_damage(data_dir, caplog):
    config = small_config(head_points=64)
    config.buckets = {"raw": BucketConfig(parse_size("64KiB"), None)}

    async def go():
        async with Store(data_dir, config) as store:
            await store.write(make_batch(rows_of(1, 640, 2)))
            await store.flush(seal=True)           # the series' blocks are in the index
            # Full heads are sealed by each commit; no checkpoint runs (interval 1h), so the
            # index still lists the first blocks while the ring has written over them.
            for k in range(40):
                await store.write(make_batch(rows_of(10, 64, 10 + k, T0, "other")))
            assert store.stats("raw")["raw"]["blocks"] > 0
            first = await store.scan_series("m,s=0 v")
            return first, store.stats("raw")["raw"]
    with caplog.at_level(logging.ERROR, logger="gateway.store"):
        first, stats = asyncio.run(go())
    assert stats["overwritten_while_read"] >= 1
    assert stats["corrupt_blocks"] == 0 and stats["index_repairs"] == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert first is None or len(first) < 640
