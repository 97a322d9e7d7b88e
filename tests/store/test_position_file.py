"""The replication position file: two slots written in turn, so a torn or damaged write leaves
the positions before it; damage is reported, never a crash."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3

import pytest

from gateway.errors import StoreError
from gateway.store import Store
from gateway.store.position_file import SLOT_BYTES, PositionFile
from gateway.store.settings import Access
from store_support import T0, flip, make_batch, small_config

log = logging.getLogger("test")


def test_the_newest_intact_slot_is_read(tmp_path):
    path = str(tmp_path / "replication.pos")
    assert PositionFile(path, log).load() == {}            # no file: no positions
    f = PositionFile(path, log)
    f.save({"cloud": (10, 100)})                            # generation 1: slot 1
    f.save({"cloud": (12, 130), "backup": (3, 40)})         # generation 2: slot 0
    f.close()
    assert os.path.getsize(path) == 2 * SLOT_BYTES
    assert PositionFile(path, log).load() == {"cloud": (12, 130), "backup": (3, 40)}
    flip(path, 30)                                         # the newest write torn
    again = PositionFile(path, log)
    assert again.load() == {"cloud": (10, 100)}
    again.save({"cloud": (13, 150)})                        # over the damaged slot
    again.close()
    assert PositionFile(path, log).load() == {"cloud": (13, 150)}


def test_both_slots_damaged_is_reported_and_reads_as_none(tmp_path, caplog):
    path = str(tmp_path / "replication.pos")
    f = PositionFile(path, log)
    f.save({"cloud": (1, 2)})
    f.save({"cloud": (3, 4)})
    f.close()
    flip(path, 2)
    flip(path, SLOT_BYTES + 2)
    with caplog.at_level(logging.ERROR):
        assert PositionFile(path, log).load() == {}
    assert "holds no intact positions" in caplog.text and "bad magic" in caplog.text


def test_positions_that_do_not_fit_a_slot_are_refused(tmp_path):
    f = PositionFile(str(tmp_path / "replication.pos"), log)
    with pytest.raises(StoreError, match="do not fit"):
        f.save({f"stream-{i:04d}": (i, i) for i in range(200)})
    f.close()


def test_a_reopen_takes_the_file_s_positions_over_an_older_index(data_dir):
    """The file is written as positions move, the index at checkpoints: after a crash between
    the two the index is older, and a reopen (read-only too, which writes nothing) takes the
    file's."""
    config = small_config()

    async def write():
        async with Store(data_dir, config) as store:
            await store.write(make_batch([("env", {}, "temp", T0 + i * 10**9, float(i))
                                          for i in range(300)]))
            await store.flush(seal=True)
            await store.set_replication_cursor("cloud", "raw", 2)
            await store.set_replication_lsn("cloud", "raw", 7)

    asyncio.run(write())
    index = os.path.join(data_dir, "store", "index.sqlite")
    with sqlite3.connect(index) as db:     # the index as the checkpoint before left it
        db.execute("UPDATE replication_cursors SET seq = 1 WHERE name = 'cloud'")
    position_file = os.path.join(data_dir, "store", "buckets", "raw", "replication.pos")
    before = os.stat(position_file).st_mtime_ns

    async def reopen():
        async with Store(data_dir, config, access=Access.READ) as store:
            return dict(store.bucket("raw").cursors), store.replication_lsn("cloud", "raw")

    assert asyncio.run(reopen()) == ({"cloud": 2}, 7)
    assert os.stat(position_file).st_mtime_ns == before
