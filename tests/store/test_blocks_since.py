"""Replication reads sealed blocks in sequence order wherever they are: in the index, sealed
since the last checkpoint, or taken by a checkpoint that has not committed them to the index
yet. A block missing from the middle of what it reads would be skipped by the stream's cursor;
missing from a bucket's figures, it would hide a stream's backlog."""

from __future__ import annotations

import asyncio

from gateway.store import Store
from store_support import T0, make_batch, small_config

S = 10**9


def _points(start: int, n: int):
    return make_batch([("m", {}, "v", T0 + (start + i) * S, float(start + i)) for i in range(n)])


async def _checkpoint_held_at_commit(store) -> tuple[asyncio.Task, asyncio.Event]:
    """A checkpoint that has taken the unindexed blocks and waits before its index commit until
    the event returned is set."""
    gate, entered = asyncio.Event(), asyncio.Event()
    commit = store._replication.index.commit

    async def held_commit(*args, **kwargs):
        entered.set()
        await gate.wait()
        return await commit(*args, **kwargs)

    store._replication.index.commit = held_commit
    checkpoint = asyncio.create_task(store.flush())
    await entered.wait()
    return checkpoint, gate


async def _blocks_1_2_indexed_3_4_being_indexed(store) -> tuple[asyncio.Task, asyncio.Event]:
    await store.write(_points(0, 128))           # two blocks sealed at commit
    await store.flush(seal=True)                 # ... indexed
    await store.write(_points(128, 128))         # two more, not indexed yet
    return await _checkpoint_held_at_commit(store)  # blocks 3-4 taken


def test_blocks_a_checkpoint_is_indexing_are_read_in_sequence(data_dir):
    async def scenario():
        async with Store(data_dir, small_config(head_points=64)) as store:
            checkpoint, gate = await _blocks_1_2_indexed_3_4_being_indexed(store)
            await store.write(_points(256, 128))         # blocks 5-6 sealed meanwhile
            during = [b.seq for b in await store.blocks_since("raw", 0, limit=100)]
            gate.set()
            await checkpoint
            after = [b.seq for b in await store.blocks_since("raw", 0, limit=100)]
        return during, after

    during, after = asyncio.run(scenario())
    assert during == after == [1, 2, 3, 4, 5, 6]


def test_a_bucket_s_figures_count_the_blocks_a_checkpoint_is_indexing(data_dir):
    async def scenario():
        async with Store(data_dir, small_config(head_points=64)) as store:
            await store.write(_points(0, 256))           # four blocks sealed at commit
            before = store.stats("raw")["raw"]
            checkpoint, gate = await _checkpoint_held_at_commit(store)
            during = store.stats("raw")["raw"]
            gate.set()
            await checkpoint
            after = store.stats("raw")["raw"]
        return before, during, after

    figures = asyncio.run(scenario())
    assert [(f["blocks"], f["points_in_blocks"]) for f in figures] == [(4, 256)] * 3


def test_reads_during_a_checkpoint_see_the_blocks_it_is_indexing(data_dir):
    """A read lists the unindexed blocks before it reads the index: blocks a checkpoint has
    taken but not committed are in neither the pending list nor the index, and a read that
    looked at the pending list only after its index query missed them."""
    async def scenario():
        async with Store(data_dir, small_config(head_points=64)) as store:
            checkpoint, gate = await _blocks_1_2_indexed_3_4_being_indexed(store)
            scanned = [list(c.timestamps) for c in await store.scan("raw", measurement="m")]
            chunked = [list(c.timestamps) async for chunk in store.scan_chunks("raw")
                       for c in chunk]
            last = await store.last("m v")
            gate.set()
            await checkpoint
        return scanned, chunked, last

    scanned, chunked, last = asyncio.run(scenario())
    every = [T0 + i * S for i in range(256)]
    assert scanned == chunked == [every]
    assert last == (T0 + 255 * S, 255.0)
