"""WAL replay across restarts: segments do not pile up when the store is opened for a moment at
a time, heads keep their age, a missing segment is a counted gap, damage counts survive."""

from __future__ import annotations

import asyncio
import logging
import os
import struct

from gateway.config.units import parse_duration
from gateway.store import Store
from gateway.store.native import crc32c

from store_support import T0, make_batch, read_all, small_config


def config():
    return small_config(head_points=1024, head_max_age=parse_duration("15m"))


def wal_files(data_dir: str) -> list[str]:
    wal_dir = os.path.join(data_dir, "store", "buckets", "raw", "wal")
    return sorted(os.path.join(wal_dir, n) for n in os.listdir(wal_dir))


async def write_one_point(data_dir: str, i: int) -> None:
    async with Store(data_dir, config()) as store:
        await store.write(make_batch([("m", {}, "v", T0 + i * 10**9, float(i))]))


def test_short_lived_opens_continue_one_segment(data_dir):
    async def scenario():
        for i in range(40):
            await write_one_point(data_dir, i)
        assert len(wal_files(data_dir)) == 1
        async with Store(data_dir, config()) as store:
            got = (await read_all(store))["m v"]
            assert got == [(T0 + i * 10**9, float(i)) for i in range(40)]
            assert store.stats("raw")["raw"]["wal_corrupt_records"] == 0

    asyncio.run(scenario())


def backdate(path: str, seconds: int) -> None:
    """Makes a segment look created ``seconds`` earlier (header field, checksum redone)."""
    with open(path, "r+b") as f:
        header = bytearray(f.read(40))
        created = struct.unpack_from("<I", header, 24)[0]
        struct.pack_into("<I", header, 24, created - seconds)
        struct.pack_into("<I", header, 36, crc32c(bytes(header[:36])))
        f.seek(0)
        f.write(header)


def test_heads_replayed_from_an_old_segment_are_sealed_by_their_age(data_dir):
    async def scenario():
        await write_one_point(data_dir, 0)
        (segment,) = wal_files(data_dir)
        backdate(segment, 3600)   # its points arrived an hour ago: older than head_max_age
        async with Store(data_dir, config()) as store:
            stats = store.stats("raw")["raw"]
            assert stats["points_in_heads"] == 0 and stats["points_in_blocks"] == 1

    asyncio.run(scenario())


def test_a_missing_segment_is_logged_and_counted_as_a_gap(data_dir, caplog):
    cfg = small_config(head_points=1024, wal_segment_size=4096)

    async def scenario():
        async with Store(data_dir, cfg) as store:
            for i in range(30):   # several segments of 4 KiB
                await store.write(make_batch([("m", {"k": str(k)}, "v", T0 + i * 10**9 + k,
                                               float(i * 1000 + k)) for k in range(200)]))
        files = wal_files(data_dir)
        assert len(files) >= 3
        os.unlink(files[1])
        with caplog.at_level(logging.ERROR, logger="gateway.store"):
            async with Store(data_dir, cfg) as store:
                stats = store.stats("raw")["raw"]
        assert stats["wal_lsn_gaps"] == 1 and stats["wal_records_missing"] >= 1
        assert "missing before segment" in caplog.text

    asyncio.run(scenario())


def test_wal_damage_counts_survive_a_restart_and_are_not_counted_twice(data_dir):
    async def scenario():
        async with Store(data_dir, config()) as store:
            for i in range(3):
                await store.write(make_batch([("m", {}, "v", T0 + i * 10**9, float(i))]))
        (segment,) = wal_files(data_dir)
        with open(segment, "r+b") as f:   # a flipped bit in the first record's body
            f.seek(40 + 30)
            byte = f.read(1)[0]
            f.seek(40 + 30)
            f.write(bytes([byte ^ 0x10]))
        for _ in range(3):
            async with Store(data_dir, config()) as store:
                assert store.stats("raw")["raw"]["wal_corrupt_records"] == 1
                assert len((await read_all(store))["m v"]) == 2
                # Sealing lets the damaged segment go once it is no longer current: the count
                # stays although the damage is no longer there to find.
                await store.flush(seal=True)

    asyncio.run(scenario())
