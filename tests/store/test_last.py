"""Store.last: the newest point of a series, kept in memory once asked for, always equal to
what a full scan ends with (late points, redeliveries, seals, reopens, eviction, expiry)."""

from __future__ import annotations

import asyncio
import math
import random
import struct

from gateway.batch import UInt
from gateway.config.model import BucketConfig
from gateway.config.units import parse_duration, parse_size
from gateway.store import Store

from store_support import T0, make_batch, read_all, small_config

S = 10**9
KEYS = {("m", "f"): float, ("m", "i"): int, ("m", "u"): UInt, ("m", "b"): bool, ("n", "s"): str}


def same(a, b) -> bool:
    """Equal points, floats compared by their bits (NaN, -0.0)."""
    if a is None or b is None:
        return a is b
    if isinstance(a[1], float) or isinstance(b[1], float):
        return a[0] == b[0] and struct.pack("<d", a[1]) == struct.pack("<d", b[1])
    return a == b


def random_rows(rng: random.Random, n: int, newest: int) -> list:
    """n points on random series: mostly newer than before, some late, some redelivered."""
    rows = []
    for _ in range(n):
        (m, f), kind = rng.choice(list(KEYS.items()))
        roll = rng.random()
        ts = (T0 + rng.randrange(newest + 1) * S if roll < 0.3          # late
              else T0 + newest * S if roll < 0.4                          # the newest again
              else T0 + (newest + rng.randrange(1, 5)) * S)               # newer
        raw = rng.choice([rng.uniform(-1e3, 1e3), 0.0, -0.0, math.inf, 2**62])
        value = {float: lambda: float(raw), int: lambda: int(raw) if math.isfinite(raw) else -7,
                 UInt: lambda: UInt(abs(int(raw)) if math.isfinite(raw) else 2**64 - 1),
                 bool: lambda: raw > 0, str: lambda: f"v{raw}"}[kind]()
        rows.append((m, {"k": "x"}, f, ts, value))
    return rows


async def check_against_scan(store: Store) -> int:
    """Every series' last point equals the scan's; returns how many came from the kept point."""
    scanned = await read_all(store)
    kept = 0
    for key, points in scanned.items():
        first = await store.last(key)
        assert same(first, points[-1]), (key, first, points[-1])
        b = store.bucket("raw")
        sid = b.catalogue.id_of(key)
        if b.catalogue[sid].type_name != "string":
            # the first call left the newest point in the heads: the next is answered from it
            assert b.newest_on_thread(sid) is not None, key
            kept += 1
        assert same(await store.last(key), points[-1]), key
    return kept


def test_last_equals_a_full_scan_through_random_writes_seals_and_reopens(data_dir):
    config = small_config(head_points=16)
    rng = random.Random(12)
    newest = 0

    async def session(rounds: int) -> int:
        nonlocal newest
        kept = 0
        async with Store(data_dir, config) as store:
            kept += await check_against_scan(store)   # after the reopen: heads replayed, blocks
            for r in range(rounds):
                rows = random_rows(rng, rng.randrange(1, 60), newest)
                newest = max(newest, max((ts - T0) // S for *_, ts, _ in rows))
                await store.write(make_batch(rows))
                if r % 3 == 1:
                    await store.flush(seal=r % 2 == 0)
                kept += await check_against_scan(store)
        return kept

    async def scenario():
        kept = 0
        for rounds in (12, 9, 7):
            kept += await session(rounds)
        return kept

    assert asyncio.run(scenario()) > 0


def test_a_late_point_or_a_redelivery_of_the_newest_time_updates_the_kept_point(data_dir, config):
    async def scenario():
        async with Store(data_dir, config) as store:
            await store.write(make_batch([("m", {}, "v", T0 + i * S, float(i)) for i in range(100)]))
            await store.flush(seal=True)
            assert await store.last("m v") == (T0 + 99 * S, 99.0)   # read from a block, kept
            await store.write(make_batch([("m", {}, "v", T0 + 5 * S, -1.0)]))    # late
            assert await store.last("m v") == (T0 + 99 * S, 99.0)
            await store.write(make_batch([("m", {}, "v", T0 + 99 * S, 7.5)]))    # same time again
            assert store.bucket("raw").newest_on_thread(store.bucket("raw").catalogue.id_of("m v")) \
                == (T0 + 99 * S, struct.unpack("<Q", struct.pack("<d", 7.5))[0])
            assert await store.last("m v") == (T0 + 99 * S, 7.5)
            assert (await read_all(store))["m v"][-1] == (T0 + 99 * S, 7.5)
    asyncio.run(scenario())


def test_last_after_the_newest_block_is_evicted_reads_what_the_ring_still_holds(data_dir):
    # "old v" is written once, then a late block of older points, then the ring wraps over
    # its newest block while "new v" fills it.
    config = small_config(head_points=128)
    config.buckets["raw"] = BucketConfig(parse_size("64KiB"), None)

    async def scenario():
        rng = random.Random(3)
        async with Store(data_dir, config) as store:
            await store.write(make_batch([("old", {}, "v", T0 + (1000 + i) * S, float(i))
                                          for i in range(128)]))
            await store.flush(seal=True)
            assert await store.last("old v") == (T0 + 1127 * S, 127.0)
            k = 0
            while store.stats("raw")["raw"]["evicted_blocks"] == 0:
                await store.write(make_batch([("new", {}, "v", T0 + (k * 128 + i) * S,
                                               round(rng.uniform(-1e6, 1e6), 6)) for i in range(128)]))
                await store.flush(seal=True)
                k += 1
                if k == 5:   # late points of "old v", in a block newer than its first one
                    await store.write(make_batch([("old", {}, "v", T0 + i * S, -float(i))
                                                  for i in range(128)]))
                    await store.flush(seal=True)
            scanned = (await read_all(store)).get("old v")
            got = await store.last("old v")
            assert got == (scanned[-1] if scanned else None)
            assert got != (T0 + 1127 * S, 127.0)   # its first block is gone
    asyncio.run(scenario())


def test_last_of_an_expired_series_is_none(data_dir):
    now = [T0 + 10 * 86400 * S]
    config = small_config()
    config.buckets["raw"] = BucketConfig(parse_size("1MiB"), parse_duration("1d"))

    async def scenario():
        async with Store(data_dir, config, clock=lambda: now[0]) as store:
            await store.write(make_batch([("m", {}, "v", now[0] - 3600 * S + i * S, float(i))
                                          for i in range(10)]))
            await store.flush(seal=True)
            assert await store.last("m v") == (now[0] - 3591 * S, 9.0)
            now[0] += 2 * 86400 * S
            await store.flush(seal=True)   # the checkpoint expires the block
            assert (await read_all(store)).get("m v") is None
            assert await store.last("m v") is None
    asyncio.run(scenario())
