"""Reading never changes a store, and a bucket's recorded size and retention are changed only on
purpose: exports open read-only (also on a full disk and a read-only mount), `gateway write`
keeps what the store records, the daemon applies its configuration and logs what it drops."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import subprocess
import time

import pytest

from gateway.cli import main
from gateway.config.model import BucketConfig
from gateway.config.units import parse_duration, parse_size
from gateway.errors import StoreError
from gateway.store import Access, Store

from store_support import make_batch, read_all, small_config

S = 10**9
#: Points from about 20 years ago: a store that keeps them needs a long retention.
OLD = (time.time_ns() // S - 20 * 365 * 86400) * S
CENTURY = """\
[store]
wal_sync = "always"
head_points = 64
[store.buckets.raw]
max_size = "1MiB"
retention = "36500d"
"""


def century_config():
    config = small_config()
    config.buckets = {"raw": BucketConfig(parse_size("1MiB"), parse_duration("36500d"))}
    return config


def files_of(data_dir: str) -> dict[str, tuple]:
    """Every file and directory under data_dir with its size, content hash and mtime."""
    out = {}
    for root, dirs, files in os.walk(data_dir):
        for name in dirs + files:
            path = os.path.join(root, name)
            st = os.lstat(path)
            digest = None
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            out[os.path.relpath(path, data_dir)] = (st.st_size, digest, st.st_mtime_ns)
    return out


def old_rows(n: int = 300):
    return [("m", {"k": str(i % 2)}, "v", OLD + i * S, float(i)) for i in range(n)]


#: Points that stay in the WAL: a head of 10 points is neither full (64) nor old when closed.
WAL_ROWS = [("m", {"k": "wal"}, "v", OLD + i * S, float(i)) for i in range(10)]


def write_old_store(data_dir: str) -> dict:
    """300 points in blocks and 10 in the WAL, all 20 years old."""
    async def go():
        async with Store(data_dir, century_config()) as store:
            await store.write(make_batch(old_rows()))
            await store.flush(seal=True)
            await store.write(make_batch(WAL_ROWS))
            assert store.stats("raw")["raw"]["blocks"] > 0
            return await read_all(store)
    written = asyncio.run(go())
    wal = os.path.join(data_dir, "store", "buckets", "raw", "wal")
    assert sum(os.path.getsize(os.path.join(wal, n)) for n in os.listdir(wal)) > 0
    return written


def read_only(data_dir: str) -> dict:
    async def go():
        async with Store(data_dir, small_config(), access=Access.READ) as store:
            return await read_all(store)
    return asyncio.run(go())


def test_export_without_config_changes_nothing_and_loses_nothing(tmp_path, capsysbinary):
    d = str(tmp_path / "data")
    (tmp_path / "century.toml").write_text(CENTURY)
    written = write_old_store(d)
    assert sum(map(len, written.values())) == 310
    before = files_of(d)
    for _ in range(2):
        assert main(["export", "--data-dir", d]) == 0
        out = capsysbinary.readouterr().out.decode()
        assert len(out.splitlines()) == 310, "export without --config lost points"
    assert files_of(d) == before, "an export changed the data directory"
    assert main(["export", "--data-dir", d, "--config", str(tmp_path / "century.toml")]) == 0
    assert len(capsysbinary.readouterr().out.splitlines()) == 310


def test_read_only_open_sees_wal_points_and_writes_nothing(data_dir):
    written = write_old_store(data_dir)
    os.unlink(os.path.join(data_dir, "store", "LOCK"))
    before = files_of(data_dir)
    got = read_only(data_dir)
    assert got == written and len(got["m,k=wal v"]) == 10   # the WAL's points, replayed
    assert files_of(data_dir) == before   # no LOCK, no WAL segment, no index or ring change

    async def refused():
        async with Store(data_dir, small_config(), access=Access.READ) as store:
            with pytest.raises(StoreError, match="read-only"):
                await store.write(make_batch(old_rows(1)))
    asyncio.run(refused())


def test_read_only_open_reads_the_series_rows_from_the_file_not_a_memory_copy(data_dir):
    # (a memory copy of a million series rows is tens of MB an export does not need)
    written = write_old_store(data_dir)
    before = files_of(data_dir)

    async def go():
        async with Store(data_dir, small_config(), access=Access.READ) as store:
            db = store.index._db
            async with db.execute("SELECT COUNT(*) FROM main.series") as cur:
                in_memory = (await cur.fetchone())[0]
            return await read_all(store), in_memory, store.buckets["raw"].state.series_count
    got, in_memory, series_count = asyncio.run(go())
    assert got == written
    assert series_count == len(written) and in_memory == 0
    assert files_of(data_dir) == before


def test_read_only_open_of_a_lost_index_rebuilds_it_in_memory_only(data_dir):
    written = write_old_store(data_dir)
    os.unlink(os.path.join(data_dir, "store", "index.sqlite"))
    before = files_of(data_dir)
    assert read_only(data_dir) == written
    assert files_of(data_dir) == before


def test_read_only_on_a_full_disk_and_on_a_read_only_mount(tmp_path):
    d = str(tmp_path / "data")
    written = write_old_store(d)
    mnt = tmp_path / "card"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], check=True)
    try:
        card = str(mnt / "data")
        shutil.copytree(d, card)
        with open(mnt / "filler", "wb", buffering=0) as f:   # a full card
            with pytest.raises(OSError):
                while True:
                    f.write(b"\xff" * 65536)
        assert read_only(card) == written
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)   # a card on a laptop
        assert read_only(card) == written
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_write_without_config_keeps_the_recorded_settings(tmp_path, capsys):
    d = str(tmp_path / "data")
    write_old_store(d)
    ring = os.path.join(d, "store", "buckets", "raw", "ring")
    line = tmp_path / "one.lp"
    line.write_text(f"m,k=0 v=1000 {OLD + 1000 * S}\n")
    assert main(["write", "--data-dir", d, str(line)]) == 0
    assert os.path.getsize(ring) == 1 << 20          # not the built-in 256MiB
    got = read_only(d)
    assert sum(map(len, got.values())) == 311         # not expired by the built-in 30d


def test_daemon_applies_a_new_retention_and_logs_what_it_drops(data_dir, caplog):
    write_old_store(data_dir)
    config = small_config()
    config.buckets = {"raw": BucketConfig(parse_size("1MiB"), parse_duration("30d"))}

    async def go():
        async with Store(data_dir, config) as store:
            return await read_all(store)
    with caplog.at_level(logging.INFO, logger="gateway.store"):
        kept = asyncio.run(go())
    msg = [r.getMessage() for r in caplog.records if "retention 30d" in r.getMessage()]
    assert msg and "replaces the recorded 36500d" in msg[0] and "(300 points)" in msg[0], msg
    # the blocks' 300 points are gone; the WAL's 10 stay in their head until it is sealed
    assert kept == {"m,k=wal v": [(ts, v) for _, _, _, ts, v in WAL_ROWS]}
    async def reopen():
        async with Store(data_dir, small_config(), access=Access.WRITE) as store:
            return store.bucket("raw").retention_ns
    assert asyncio.run(reopen()) == 30 * 86400 * S   # recorded now


def test_cutting_a_ring_that_holds_data_needs_the_resize_command(tmp_path, capsys):
    d = str(tmp_path / "data")
    written = write_old_store(d)
    ring = os.path.join(d, "store", "buckets", "raw", "ring")
    cfg = tmp_path / "small.toml"
    cfg.write_text(CENTURY.replace('max_size = "1MiB"', 'max_size = "512KiB"'))

    async def daemon_open():
        from gateway.config import load_file
        await Store(d, load_file(str(cfg)).store).open()
    with pytest.raises(StoreError, match="gateway bucket resize raw --max-size 512KiB"):
        asyncio.run(daemon_open())
    assert os.path.getsize(ring) == 1 << 20
    assert read_only(d) == written
    assert main(["bucket", "resize", "raw", "--max-size", "512KiB", "--data-dir", d]) == 0
    assert os.path.getsize(ring) == 512 << 10
    assert read_only(d) == written   # these few blocks all lie in the first 512KiB
