"""Damaged WAL and ring files: the store opens, returns only points that were written, counts."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys

import pytest

from gateway.store import Store

from store_support import T0, make_batch, small_config

SERIES = 6


def rows(start: int, count: int):
    out = []
    for i in range(start, start + count):
        s = i % SERIES
        ts = T0 + i * 10**9
        out.append(("env", {"sensor": f"s{s}"}, "temp" if s else "state", ts,
                    f"state {i}" if s == 0 else round(20 + i * 0.01, 2)))
    return out


def written() -> dict:
    return {(f"env,sensor=s{m_tags['sensor'][1:]} {f}", ts): v
            for _, m_tags, f, ts, v in rows(0, 3000)}


def config():
    return small_config(head_points=1024)


async def build(data_dir: str) -> None:
    """Blocks that are indexed, blocks only in the ring, points only in the WAL; then the
    process dies as in a power cut (called in a child process)."""
    store = Store(data_dir, config())
    await store.open()
    for start in range(0, 2400, 400):
        await store.write(make_batch(rows(start, 400)))
    await store.flush(seal=True)                     # blocks in the ring, indexed
    await store.write(make_batch(rows(2400, 300)))
    b = store.buckets["raw"]
    sealed = await store.threads.on_store_thread(b.seal_due_on_thread, 0, True)
    await store.threads.on_sync_thread(b.ring.sync)  # in the ring, not indexed
    await store.write(make_batch(rows(2700, 300)))   # only in the WAL
    assert sealed.sealed
    os.kill(os.getpid(), signal.SIGKILL)


async def read_back(data_dir: str):
    async with Store(data_dir, config()) as store:
        got = {}
        for cols in await store.scan("raw"):
            for ts, v in zip(cols.timestamps, cols.values):
                got[(cols.key, ts)] = v
        stats = store.stats("raw")["raw"]
    damage = stats["wal_corrupt_records"] + stats["corrupt_blocks"] + stats["wal_points_lost"]
    return got, damage


def damage(path: str, rng: random.Random, used_from: int, used_to: int) -> str:
    size = os.path.getsize(path)
    hi = min(size, used_to) if used_to else size
    if rng.random() < 0.3:
        cut = rng.randrange(used_from, hi)
        with open(path, "r+b") as f:
            f.truncate(cut)
        return f"truncated {os.path.basename(path)} at {cut}"
    with open(path, "r+b") as f:
        spots = [rng.randrange(used_from, hi) for _ in range(rng.randint(1, 6))]
        for off in spots:
            f.seek(off)
            b = f.read(1)
            f.seek(off)
            f.write(bytes([b[0] ^ (1 << rng.randrange(8))]))
    return f"flipped bits of {os.path.basename(path)} at {spots}"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("pristine") / "data")
    code = (f"import asyncio, sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); "
            f"import test_corruption as t; asyncio.run(t.build({d!r}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return d


def test_pristine_store_reads_back_everything(pristine, tmp_path):
    d = str(tmp_path / "data")
    shutil.copytree(pristine, d)
    got, damage_count = asyncio.run(read_back(d))
    assert got == written()
    assert damage_count == 0


@pytest.mark.parametrize("seed", range(40))
def test_damaged_files_never_crash_never_return_corrupt_points_and_are_counted(pristine, tmp_path, seed):
    rng = random.Random(seed)
    d = str(tmp_path / "data")
    shutil.copytree(pristine, d)
    bucket = os.path.join(d, "store", "buckets", "raw")
    wal_dir = os.path.join(bucket, "wal")
    segments = sorted(os.path.join(wal_dir, n) for n in os.listdir(wal_dir))
    ring = os.path.join(bucket, "ring")
    with open(ring, "rb") as f:
        ring_used = len(f.read().rstrip(b"\0"))  # the entries written sit before this
    if seed % 2:
        target = rng.choice([s for s in segments if os.path.getsize(s) > 32])
        what = damage(target, rng, 0, 0)
    else:
        what = damage(ring, rng, 4096, ring_used)
    got, counted = asyncio.run(read_back(d))
    truth = written()
    wrong = {k: v for k, v in got.items() if truth.get(k, object()) != v}
    assert not wrong, f"{what}: returned points never written: {list(wrong.items())[:3]}"
    if len(got) < len(truth):
        assert counted > 0, f"{what}: {len(truth) - len(got)} points gone, nothing counted"
