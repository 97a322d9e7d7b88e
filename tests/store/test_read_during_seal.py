"""A read that a seal overtakes still sees every point.

A reader takes the blocks not indexed yet on the event loop, then copies the heads on the store
thread. A seal that runs between the two (a checkpoint's, or a commit's, queued on the store
thread ahead of the copy) moves points out of the heads into a block that the loop takes in
only once the seal returns: without the blocks that come with the copy of the heads, the read
found those points nowhere (a count of 20 points gave no table at all), and a downsampling task
running then would have written a window without them. Each way of reading is made to meet
that order by holding the store thread until the checkpoint's seal and the read are both queued.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from gateway.query import compile_query, run_query
from gateway.store import Store

from store_support import T0, make_batch, small_config

S = 10**9
POINTS = 20


async def _with_seal_before_the_copy(store: Store, read):
    """``read()`` started while a checkpoint's seal of every head waits on the store thread
    ahead of the read's copy of the heads."""
    gate = threading.Event()
    store.threads.to_store_thread(gate.wait)
    checkpoint = asyncio.create_task(store._checkpoints_part.checkpoint(store.buckets["raw"],
                                                                        force_seal=True))
    for _ in range(20):   # the checkpoint reaches the store thread's queue
        await asyncio.sleep(0)
    reading = asyncio.create_task(read())
    for _ in range(20):   # the read takes the unindexed blocks and queues its copy
        await asyncio.sleep(0)
    gate.set()
    got = await reading
    await checkpoint
    return got


async def _query(store: Store, pipe: str) -> list:
    src = f'from(bucket: "raw") |> range(start: {T0 // S}, stop: {T0 // S + 600}) |> {pipe}'
    results, _ = await run_query(compile_query(src, now=T0 + 3600 * S), store)
    return [list(t.data["_value"]) for t in results[0].tables]


READS = {
    "window fold, block lists in C": lambda store: _query(store, "count()"),
    "window fold, block lists in Python": lambda store: _query(store, "count()"),
    "streamed points": lambda store: _query(store, 'keep(columns: ["_value"]) |> count()'),
    "scan": lambda store: _scan_count(store),
}


async def _scan_count(store: Store) -> list:
    return [[len(cols)] for cols in await store.scan("raw")]


@pytest.mark.parametrize("way", list(READS))
def test_a_read_sees_the_points_a_seal_moves_while_it_reads(data_dir, way):
    async def scenario() -> list:
        async with Store(data_dir, small_config(head_points=32)) as store:
            await store.write(make_batch([("m", {"s": "a"}, "v", T0 + i * S, float(i))
                                          for i in range(POINTS)]))
            if way.endswith("in Python"):
                store.index._native_path = None   # as when the index is in memory
                store.index.close_readers()
            return await _with_seal_before_the_copy(store, lambda: READS[way](store))

    assert asyncio.run(scenario()) == [[POINTS]]
