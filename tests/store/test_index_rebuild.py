"""A lost or unreadable block index is rebuilt from the ring files and the series files."""

from __future__ import annotations

import asyncio
import os

import pytest

from gateway.store import Store

from store_support import T0, make_batch, read_all, small_config


async def fill(data_dir, config):
    wal_dir = os.path.join(data_dir, "store", "buckets", "raw", "wal")
    async with Store(data_dir, config) as store:
        rows = [("env", {"s": str(s)}, "temp", T0 + i * 10**9, round(20 + (i % 97) * 0.01, 2))
                for s in range(5) for i in range(2000)]
        rows += [("log", {}, "msg", T0 + i * 10**9, f"event {i}") for i in range(300)]
        await store.write(make_batch(rows))                       # into the WAL
        kept = {n: open(os.path.join(wal_dir, n), "rb").read() for n in os.listdir(wal_dir)}
        await store.flush(seal=True)                              # into the ring; WAL deleted
        await store.write(make_batch([("env", {"s": "0"}, "temp", T0 + 10**13, 1.25)]))  # WAL only
        got = await read_all(store)
    # Put back the WAL segments of the sealed points (as after a crash before the checkpoint
    # that deletes them): rebuilt from the ring, those points must not be replayed again.
    restored = 0
    for name, data in kept.items():
        if not os.path.exists(os.path.join(wal_dir, name)):
            with open(os.path.join(wal_dir, name), "wb") as f:
                f.write(data)
            restored += 1
    assert restored
    return got


@pytest.mark.parametrize("damage", ["deleted", "garbage"])
def test_lost_index_is_rebuilt_from_the_rings(data_dir, damage):
    config = small_config(head_points=4096, wal_segment_size=1024)
    before = asyncio.run(fill(data_dir, config))
    index = os.path.join(data_dir, "store", "index.sqlite")
    if damage == "deleted":
        os.unlink(index)
    else:
        with open(index, "r+b") as f:
            f.write(b"this is not a database" * 200)

    async def reopen():
        async with Store(data_dir, config) as store:
            got = await read_all(store)
            stats = store.stats("raw")["raw"]
        async with Store(data_dir, config) as store:  # and the rebuilt index persists
            again = await read_all(store)
        return got, stats, again

    got, stats, again = asyncio.run(reopen())
    assert got == before
    assert again == before
    assert stats["series"] == 6 and stats["points"] == 10_301
    assert stats["points_in_heads"] == 1


def test_a_rebuilt_index_keeps_the_replication_cursors_of_the_last_checkpoint(data_dir):
    config = small_config(head_points=256)

    async def write_and_forward():
        async with Store(data_dir, config) as store:
            await store.write(make_batch([("env", {}, "temp", T0 + i * 10**9, float(i % 50))
                                          for i in range(2000)]))
            await store.flush(seal=True)
            blocks = await store.blocks_since("raw", 0, limit=100)
            assert len(blocks) >= 4
            await store.set_replication_cursor("upstream", "raw", blocks[2].seq)
            await store.set_replication_cursor("backup", "raw", blocks[0].seq)
            await store.flush()                              # a checkpoint saves them
            await store.set_replication_cursor("upstream", "raw", blocks[3].seq)   # saved by the close
            return [b.seq for b in blocks]

    seqs = asyncio.run(write_and_forward())
    os.unlink(os.path.join(data_dir, "store", "index.sqlite"))

    async def reopen():
        async with Store(data_dir, config) as store:
            rebuilt = dict(store.bucket("raw").cursors)
            pending = [b.seq for b in await store.blocks_since("raw", rebuilt["upstream"], limit=100)]
        async with Store(data_dir, config) as store:     # now in the rebuilt index too
            return rebuilt, pending, dict(store.bucket("raw").cursors)

    rebuilt, pending, again = asyncio.run(reopen())
    assert rebuilt == again == {"upstream": seqs[3], "backup": seqs[0]}
    assert pending == seqs[4:]
