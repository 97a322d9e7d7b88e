"""Periodic checkpoints let sealed blocks wait for the index (gateway/store/checkpoint.py,
INDEX_BATCH_S), so that seal bursts a checkpoint or two apart share one index transaction. A
cut while blocks wait, after their WAL segments were deleted, must lose nothing: the blocks are
synced in the ring and recovery follows the ring's chain from the index's checkpoint."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3

from gateway.config.units import parse_size
from gateway.store import Store

from store_support import T0, make_batch, read_all, small_config

S = 10**9


def config():
    # segments of 2 KiB: every seal lets the checkpoint delete the segments before it
    return small_config(head_points=16, wal_segment_size=parse_size("2KiB"))


def rows(first: int, n: int):
    return [("m", {"s": str(i % 4)}, "v", T0 + (first + i) * S, float(first + i))
            for i in range(n)]


def indexed_blocks(data_dir: str) -> int:
    with sqlite3.connect(f"file:{data_dir}/store/index.sqlite?mode=ro", uri=True) as db:
        return db.execute("SELECT count(*) FROM blocks").fetchone()[0]


def test_a_cut_while_sealed_blocks_wait_for_the_index_loses_nothing(tmp_path):
    data_dir, cut = str(tmp_path / "data"), str(tmp_path / "cut")

    async def before_the_cut():
        async with Store(data_dir, config()) as store:
            b = store.buckets["raw"]
            await store.write(make_batch(rows(0, 64)))
            await store.flush()                        # indexed: 16 blocks of 16 points
            assert indexed_blocks(data_dir) == 4 and not b.pending
            for first in range(64, 264, 4):            # one point a series a commit
                await store.write(make_batch(rows(first, 4)))
            segments = len(os.listdir(b.wal_dir))
            # a periodic checkpoint: heads sealed, the ring synced, WAL segments deleted,
            # the blocks waiting for the index
            await store._checkpoints.checkpoint(b, force_seal=True, batch=True)
            assert b.pending and indexed_blocks(data_dir) == 4
            assert len(os.listdir(b.wal_dir)) < segments
            # readable while they wait
            got = await read_all(store)
            assert sum(len(p) for p in got.values()) == 264
            # the cut: what is on the card now (every file was synced)
            shutil.copytree(data_dir, cut)
            await store._checkpoints.checkpoint(b, batch=True)
            assert b.pending                          # still waiting: one transaction later
        # closing records them: per series 1 block, then 3 full and the rest force-sealed
        assert indexed_blocks(data_dir) == 4 * (1 + 3 + 1)

    asyncio.run(before_the_cut())

    async def after_the_cut():
        async with Store(cut, config()) as store:
            got = await read_all(store)
        return got

    got = asyncio.run(after_the_cut())
    assert sorted(v for pts in got.values() for _, v in pts) == [float(i) for i in range(264)]
    assert indexed_blocks(cut) == 4 * (1 + 3 + 1)   # recovery found the waiting blocks in the ring


def test_new_series_are_indexed_at_once(tmp_path):
    data_dir = str(tmp_path / "data")

    async def go():
        async with Store(data_dir, config()) as store:
            b = store.buckets["raw"]
            await store.write(make_batch(rows(0, 64)))
            await store._checkpoints.checkpoint(b, force_seal=True, batch=True)
            assert not b.pending and indexed_blocks(data_dir) == 4

    asyncio.run(go())
