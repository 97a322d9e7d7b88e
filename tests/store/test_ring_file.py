"""The ring file's header: two copies, so one damaged sector does not cost a bucket; format
versions checked; entries that declare impossible lengths are damage, never an allocation;
new files' names made durable."""

from __future__ import annotations

import asyncio
import os
import stat
import struct
import subprocess
import sys

import pytest

from gateway._native import lib
from gateway.store import Access, Store
from gateway.store.native import StoreCorrupt, crc32c

from store_support import T0, flip, make_batch, read_all, small_config

S = 10**9
COPY = lib.GW_RING_HEADER_COPY


def ring_of(data_dir: str) -> str:
    return os.path.join(data_dir, "store", "buckets", "raw", "ring")


def fill(data_dir: str) -> dict:
    async def go():
        async with Store(data_dir, small_config()) as store:
            rows = [("m", {}, "v", T0 + i * S, float(i)) for i in range(500)]
            await store.write(make_batch(rows))
            await store.flush(seal=True)
            return await read_all(store)
    return asyncio.run(go())


def open_and_read(data_dir: str, access=Access.RUN) -> tuple[dict, int]:
    async def go():
        async with Store(data_dir, small_config(), access=access) as store:
            return await read_all(store), store.stats("raw")["raw"]["ring_header_damage"]
    return asyncio.run(go())


def header(path: str, offset: int = 0) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(64)


def put_header(path: str, h: bytes, offset: int) -> None:
    h = h[:60] + struct.pack("<I", crc32c(h[:60]))
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(h)


@pytest.mark.parametrize("where", [0, 17, COPY + 20])
def test_one_flipped_bit_in_a_header_costs_nothing_and_is_repaired(data_dir, where):
    written = fill(data_dir)
    ring = ring_of(data_dir)
    flip(ring, where)
    damaged = open(ring, "rb").read()
    assert open_and_read(data_dir, Access.READ) == (written, 1)
    assert open(ring, "rb").read() == damaged            # read-only: left as it is
    assert open_and_read(data_dir) == (written, 1)       # counted, and rewritten
    assert open_and_read(data_dir) == (written, 0)
    assert header(ring) == header(ring, COPY)


def test_both_header_copies_damaged_is_refused_clearly(data_dir):
    fill(data_dir)
    flip(ring_of(data_dir), 20)
    flip(ring_of(data_dir), COPY + 20)
    with pytest.raises(StoreCorrupt, match="both header copies are damaged"):
        open_and_read(data_dir)


def test_a_newer_format_version_is_refused(data_dir):
    fill(data_dir)
    ring = ring_of(data_dir)
    h = bytearray(header(ring))
    struct.pack_into("<I", h, 8, 3)
    for off in (0, COPY):
        put_header(ring, bytes(h), off)
    with pytest.raises(StoreCorrupt, match="newer than version 2"):
        open_and_read(data_dir, Access.READ)


def test_a_version_1_ring_is_read_and_upgraded_by_the_daemon(data_dir):
    written = fill(data_dir)
    ring = ring_of(data_dir)
    h = bytearray(header(ring))
    struct.pack_into("<I", h, 8, 1)
    h[32:60] = bytes(28)                       # version 1: no retention, no copy
    put_header(ring, bytes(h), 0)
    with open(ring, "r+b") as f:
        f.seek(COPY)
        f.write(bytes(64))
    assert open_and_read(data_dir, Access.READ) == (written, 0)
    assert open_and_read(data_dir) == (written, 0)
    assert struct.unpack_from("<I", header(ring), 8)[0] == 2
    assert header(ring) == header(ring, COPY)


_OPEN_UNDER_LIMIT = """
import asyncio, resource, sys
sys.path.insert(0, {tests!r})
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from gateway.store import Store
from store_support import read_all, small_config
async def go():
    async with Store({d!r}, small_config()) as store:
        print(sum(map(len, (await read_all(store)).values())))
asyncio.run(go())
"""


def test_a_garbage_entry_length_is_damage_not_an_allocation(data_dir):
    fill(data_dir)
    ring = ring_of(data_dir)
    # Where the next entry would go: the checkpoint's position. Put a header there with the
    # right magic and sequence number but a length of almost 4 GiB.
    import sqlite3
    db = sqlite3.connect(os.path.join(data_dir, "store", "index.sqlite"))
    pos, seq = db.execute("SELECT write_pos, next_seq FROM buckets WHERE name='raw'").fetchone()
    db.close()
    with open(ring, "r+b") as f:
        f.seek(pos)
        f.write(struct.pack("<IIQII", 0x45525747, 0, seq, 1, 0xFFFFFF00))
    r = subprocess.run([sys.executable, "-c", _OPEN_UNDER_LIMIT.format(
        tests=os.path.dirname(__file__), d=data_dir)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["500"]


def test_new_files_and_directories_are_synced(data_dir, monkeypatch):
    synced = []
    real = os.fsync

    def fsync(fd):
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            synced.append((st.st_dev, st.st_ino))
        return real(fd)
    monkeypatch.setattr(os, "fsync", fsync)
    fill(data_dir)
    bucket = os.path.dirname(ring_of(data_dir))

    def ident(path):
        st = os.stat(path)
        return st.st_dev, st.st_ino
    # the ring's and the series file's names, and the new bucket directory's own name
    for d in (bucket, os.path.dirname(bucket), os.path.join(bucket, "wal")):
        assert ident(d) in synced, d


def test_a_ring_is_synced_only_when_blocks_were_written_since_its_last_sync(data_dir):
    async def go():
        async with Store(data_dir, small_config()) as store:
            raw, rollup = store.buckets["raw"].ring, store.buckets["rollup"].ring
            await store.flush()              # the open's own checkpoint synced both rings
            syncs = raw.info().syncs, rollup.info().syncs
            await store.write(make_batch([("m", {}, "v", T0 + i * 10**9, float(i))
                                          for i in range(10)]))
            await store.flush(seal=True)     # a block in the raw ring: it is synced
            assert raw.info().syncs == syncs[0] + 1
            await store.flush()              # nothing new in either ring: no sync
            assert (raw.info().syncs, rollup.info().syncs) == (syncs[0] + 1, syncs[1])
        async with Store(data_dir, small_config()) as store:
            # a reopened ring is synced once whatever: a killed process may have left its
            # blocks unsynced in the page cache
            assert store.buckets["raw"].ring.info().syncs == 1
    asyncio.run(go())
