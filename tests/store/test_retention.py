"""Retention: a full ring keeps exactly the newest blocks, age drops exactly the expired ones,
and what goes before a replication stream sent it is counted."""

from __future__ import annotations

import asyncio
import random

from gateway.config.model import BucketConfig
from gateway.config.units import parse_duration, parse_size
from gateway.store import Store

from store_support import T0, make_batch, read_all, small_config

S = 10**9


def noisy(rng: random.Random, n: int) -> list[float]:
    return [round(rng.uniform(-1e6, 1e6), 6) for _ in range(n)]  # about 5 bytes a point


def test_wrapped_ring_keeps_exactly_the_newest_blocks(data_dir):
    config = small_config(head_points=128)
    config.buckets["raw"] = BucketConfig(parse_size("64KiB"), None)
    rng = random.Random(1)
    written = {"m v": [], "m w": []}

    async def scenario():
        async with Store(data_dir, config) as store:
            for k in range(120):
                rows = []
                for f in ("v", "w"):
                    values = noisy(rng, 128)
                    pts = [(T0 + (k * 128 + i) * S, values[i]) for i in range(128)]
                    written[f"m {f}"] += pts
                    rows += [("m", {}, f, ts, v) for ts, v in pts]
                await store.write(make_batch(rows))
                await store.flush(seal=True)
            got = await read_all(store)
            stats = store.stats("raw")["raw"]
        return got, stats

    got, stats = asyncio.run(scenario())
    total = sum(len(v) for v in written.values())
    kept = sum(len(v) for v in got.values())
    assert stats["evicted_points"] > total // 2, "the ring should have wrapped several times"
    assert kept + stats["evicted_points"] == total
    assert stats["fill"] > 0.8
    for key, points in written.items():
        assert got[key] == points[len(points) - len(got[key]):], f"{key}: not the newest run"
    # Both series lose the same span of time: the oldest point kept differs by at most a block.
    oldest = [got[k][0][0] for k in written]
    assert abs(oldest[0] - oldest[1]) <= 128 * S

    async def reopen():
        async with Store(data_dir, config) as store:
            return await read_all(store)

    assert asyncio.run(reopen()) == got


def test_age_retention_drops_exactly_the_expired_blocks_and_counts_unforwarded(data_dir):
    config = small_config(head_points=1024)
    config.buckets["raw"] = BucketConfig(parse_size("1MiB"), parse_duration("1h"))
    now = [T0]

    async def scenario():
        async with Store(data_dir, config, clock=lambda: now[0]) as store:
            for k in range(10):  # one block per 10 minutes of data
                await store.write(make_batch([("m", {}, "v", T0 + (k * 600 + i) * S, float(k * 600 + i))
                                              for i in range(600)]))
                await store.flush(seal=True)
            assert len((await read_all(store))["m v"]) == 6000
            blocks = await store.blocks_since("raw", 0, limit=100)
            assert [b.seq for b in blocks] == list(range(1, 11))
            await store.set_replication_cursor("upstream", "raw", blocks[1].seq)  # sent 2 blocks
            now[0] = T0 + 3600 * S + 35 * 60 * S   # cutoff: T0 + 35 min
            await store.flush()
            got = (await read_all(store))["m v"]
            stats = store.stats("raw")["raw"]
        return got, stats

    got, stats = asyncio.run(scenario())
    # Blocks ending before the cutoff go (0-10, 10-20, 20-30 min); 30-40 min straddles it and stays.
    assert got[0] == (T0 + 1800 * S, 1800.0)
    assert len(got) == 4200
    assert (stats["expired_blocks"], stats["expired_points"]) == (3, 1800)
    assert stats["dropped_before_forwarding"] == 600  # the third block was never sent
    assert stats["oldest"] == T0 + 1800 * S


def test_eviction_counts_points_a_replication_stream_had_not_sent(data_dir):
    config = small_config(head_points=64)
    config.buckets["raw"] = BucketConfig(parse_size("64KiB"), None)
    rng = random.Random(2)

    async def scenario():
        async with Store(data_dir, config) as store:
            await store.set_replication_cursor("upstream", "raw", 0)  # a stream that sent nothing
            for k in range(200):
                await store.write(make_batch([("m", {}, "v", T0 + (k * 64 + i) * S, v)
                                              for i, v in enumerate(noisy(rng, 64))]))
                await store.flush(seal=True)
            stats = store.stats("raw")["raw"]
        async with Store(data_dir, config) as store:   # the counter is durable
            assert store.stats("raw")["raw"]["dropped_before_forwarding"] == stats["evicted_points"]
        return stats

    stats = asyncio.run(scenario())
    assert stats["evicted_points"] > 0
    assert stats["dropped_before_forwarding"] == stats["evicted_points"]


def test_points_older_than_the_retention_are_refused_and_counted(data_dir):
    config = small_config()
    config.buckets["raw"] = BucketConfig(parse_size("1MiB"), parse_duration("1h"))
    now = T0 + 7200 * S

    async def scenario():
        async with Store(data_dir, config, clock=lambda: now) as store:
            result = await store.write(make_batch(
                [("m", {}, "v", now - 3601 * S, 1.0),    # an hour and a second old: refused
                 ("m", {}, "v", now - 3599 * S, 2.0),
                 ("old", {}, "v", T0, 3.0)]))            # its series is never created
            got = await read_all(store)
            return result, got, store.stats("raw")["raw"], store.series("raw")

    result, got, stats, catalogue = asyncio.run(scenario())
    assert (result.points, result.too_old, result.refused) == (1, 2, 0)
    assert "older than the retention" in result.problem
    assert got == {"m v": [(now - 3599 * S, 2.0)]}
    assert stats["too_old"] == 2
    assert [s.key for s in catalogue] == ["m v"]
