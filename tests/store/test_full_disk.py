"""A full disk fails writes clearly, keeps what was stored readable, and recovers."""

from __future__ import annotations

import asyncio
import os

import pytest

from gateway.config.model import BucketConfig
from gateway.config.units import parse_size
from gateway.errors import StoreError
from gateway.store import Store

from small_disk import fill, mounted_tmpfs
from store_support import T0, make_batch, read_all, small_config


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs (needs the right to mount; skipped without it)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    with mounted_tmpfs(mnt, "4m") as (path, error):
        if path is None:
            pytest.skip(f"cannot mount a small tmpfs: {error}")
        yield path


def test_enospc_fails_the_write_keeps_data_and_recovers(small_disk):
    # Heads big enough that the batch goes through the WAL (a full head would be sealed
    # straight into the preallocated ring, which has room even on a full disk).
    # WAL segments are preallocated: a record that fits in the current segment's zeros needs
    # no new space, so a small segment makes this batch need some.
    config = small_config(head_points=8192, wal_segment_size=parse_size("4KiB"))
    config.buckets = {"raw": BucketConfig(parse_size("512KiB"), None),
                      "rollup": BucketConfig(parse_size("64KiB"), None)}
    data_dir = os.path.join(small_disk, "data")

    def value(i):  # about 3 bytes a point in the WAL: a batch needs new pages
        return (i * 7919 % 1000003) / 1000

    def rows(start, n):
        return [("m", {}, "v", T0 + i * 10**9, value(i)) for i in range(start, start + n)]

    async def scenario():
        async with Store(data_dir, config) as store:
            await store.write(make_batch(rows(0, 1000)))
            await store.flush()
            filler = fill(small_disk)
            with pytest.raises(StoreError, match="No space left on device"):
                await store.write(make_batch(rows(1000, 5000)))
            # what was stored is still there, the failed batch is not
            got = (await read_all(store))["m v"]
            assert [t for t, _ in got] == [T0 + i * 10**9 for i in range(1000)]
            assert store.stats("raw")["raw"]["commit_errors"] == 1
            health = store.health()   # the status page says why, while writes fail
            assert health["healthy"] is False and "No space left on device" in health["last_error"]
            os.unlink(filler)  # space returns
            await store.write(make_batch(rows(1000, 5000)))
            assert store.health().get("healthy", True) and "last_error" not in store.health()
            assert len((await read_all(store))["m v"]) == 6000
        async with Store(data_dir, config) as store:
            got = (await read_all(store))["m v"]
            assert got == [(T0 + i * 10**9, value(i)) for i in range(6000)]

    asyncio.run(scenario())
