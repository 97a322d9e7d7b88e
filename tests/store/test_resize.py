"""Changing a bucket's max_size resizes its ring file: growing keeps every block, shrinking
(only on purpose: `gateway bucket resize`) drops (and counts) exactly the blocks beyond the new
end, and the bucket keeps working."""

from __future__ import annotations

import asyncio
import os
import random

import pytest

from gateway.config.model import BucketConfig
from gateway.config.units import parse_size
from gateway.store import Access, Store
from gateway.store.settings import SettingsRefused

from store_support import T0, make_batch, read_all, small_config

S = 10**9


def config_of(size: str):
    config = small_config(head_points=256)
    config.buckets["raw"] = BucketConfig(parse_size(size), None)
    return config


def test_grow_then_shrink_the_ring(data_dir):
    rng = random.Random(3)
    rows = [("m", {}, "v", T0 + i * S, round(rng.uniform(-1e6, 1e6), 6)) for i in range(20_000)]
    ring = os.path.join(data_dir, "store", "buckets", "raw", "ring")

    async def scenario():
        async with Store(data_dir, config_of("256KiB")) as store:
            await store.write(make_batch(rows[:10_000]))
            await store.flush(seal=True)
            before = await read_all(store)
        assert os.path.getsize(ring) == 256 * 1024
        async with Store(data_dir, config_of("1MiB")) as store:   # grow
            assert await read_all(store) == before
            await store.write(make_batch(rows[10_000:]))
            await store.flush(seal=True)
            grown = (await read_all(store))["m v"]
        assert os.path.getsize(ring) == 1024 * 1024
        assert grown == [(ts, v) for _, _, _, ts, v in rows]
        with pytest.raises(SettingsRefused, match="gateway bucket resize raw --max-size 128KiB"):
            await Store(data_dir, config_of("128KiB")).open()  # the daemon does not cut data
        assert os.path.getsize(ring) == 1024 * 1024
        async with Store(data_dir, config_of("128KiB"), access=Access.RESIZE) as store:  # shrink
            kept = (await read_all(store))["m v"]
            stats = store.stats("raw")["raw"]
            assert stats["used_bytes"] <= 128 * 1024
            assert stats["evicted_points"] + len(kept) == len(rows)
            await store.write(make_batch([("m", {}, "v", T0 + 30_000 * S, 1.5)]))
            await store.flush(seal=True)
            assert (await store.last("m v")) == (T0 + 30_000 * S, 1.5)
        assert os.path.getsize(ring) == 128 * 1024
        # what is left is points as written, each block whole
        truth = dict((ts, v) for _, _, _, ts, v in rows)
        assert kept and all(truth[ts] == v for ts, v in kept)
        return kept

    asyncio.run(scenario())
