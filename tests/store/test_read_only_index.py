"""A read-only open (gateway query, gateway export on a stopped store) reads the block index's
blocks from the file as long as nothing changes them, instead of copying them into memory (a
month of blocks is about 15 MB there); when recovery must change them (blocks sealed after the
last checkpoint, a ring cut short), they are copied and changed in memory. Either way the
reader sees every point and the file is left as it was."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import subprocess
import sys

from gateway.store import Access, Store

from store_support import T0, make_batch, read_all, small_config

S = 10**9
HERE = os.path.dirname(os.path.abspath(__file__))


def _rows(first: int, n: int):
    return [("m", {"s": str(i % 3)}, "v", T0 + (first + i) * S, float(first + i))
            for i in range(n)]


def _digest(data_dir: str) -> str:
    path = os.path.join(data_dir, "store", "index.sqlite")
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _read_only(data_dir: str) -> tuple[dict, bool]:
    async def go():
        async with Store(data_dir, small_config(), access=Access.READ) as store:
            return await read_all(store), store.index._blocks_on_file
    return asyncio.run(go())


def _read_writable(data_dir: str) -> dict:
    async def go():
        async with Store(data_dir, small_config()) as store:
            return await read_all(store)
    return asyncio.run(go())


def _fill(data_dir: str) -> dict:
    """Blocks of three series, recorded in the index by the close; what a read gives."""
    async def go():
        async with Store(data_dir, small_config()) as store:
            for k in range(5):
                await store.write(make_batch(_rows(k * 300, 300)))
                await store.flush(seal=True)
            return await read_all(store)

    return asyncio.run(go())


def test_a_cleanly_closed_store_is_read_from_the_index_file(data_dir):
    written = _fill(data_dir)
    before = _digest(data_dir)
    got, on_file = _read_only(data_dir)
    assert got == written
    assert on_file            # nothing was copied into memory
    assert _digest(data_dir) == before


def test_blocks_sealed_after_the_checkpoint_are_added_in_memory(data_dir):
    # A writer killed after sealing blocks that no checkpoint recorded in the index.
    code = ("import asyncio, os, sys\n"
            f"sys.path.insert(0, {HERE!r})\n"
            "from gateway.store import Store\n"
            "from store_support import make_batch, small_config\n"
            "from test_read_only_index import _rows\n"
            "async def main():\n"
            f"    store = Store({data_dir!r}, small_config())\n"
            "    await store.open()\n"
            "    await store.write(make_batch(_rows(0, 600)))\n"
            "    await store.flush(seal=True)\n"
            "    await store.write(make_batch(_rows(600, 600)))\n"
            "    await store.flush(seal=True)\n"
            "    os._exit(0)\n"
            "asyncio.run(main())\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=HERE)
    before = _digest(data_dir)
    got, on_file = _read_only(data_dir)
    assert sum(len(points) for points in got.values()) == 1200
    assert _digest(data_dir) == before
    assert on_file            # recovery keeps such blocks beside the index, as pending
    assert got == _read_writable(data_dir)


def test_a_wrong_index_row_is_repaired_in_memory(data_dir):
    written = _fill(data_dir)
    # a row that points a few bytes off: the file is sound, the row leads to no entry
    with sqlite3.connect(os.path.join(data_dir, "store", "index.sqlite")) as db:
        (seq,) = db.execute("SELECT seq FROM blocks ORDER BY seq LIMIT 1 OFFSET 3").fetchone()
        db.execute("UPDATE blocks SET offset = offset + 8 WHERE seq = ?", (seq,))
    before = _digest(data_dir)
    got, on_file = _read_only(data_dir)
    assert got == written
    assert not on_file        # the repair changed the blocks: in memory
    assert _digest(data_dir) == before


def test_the_index_journal_is_kept_between_transactions_and_readers_ignore_it(data_dir):
    journal = os.path.join(data_dir, "store", "index.sqlite-journal")

    async def go():
        async with Store(data_dir, small_config()) as store:
            for first in (0, 100):
                await store.write(make_batch(_rows(first, 100)))
                await store.flush(seal=True)
                # kept, not emptied (no blocks freed and allocated again a transaction), its
                # header zeroed: no reader takes it for a transaction to roll back
                with open(journal, "rb") as f:
                    head = f.read(28)
                assert os.path.getsize(journal) > 0 and head == bytes(28)
    asyncio.run(go())
    got, on_file = _read_only(data_dir)
    assert on_file and sorted(v for pts in got.values() for _, v in pts) \
        == [float(i) for i in range(200)]
