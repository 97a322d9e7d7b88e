"""Killed at random moments, the store keeps every acknowledged point and invents none."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from gateway.store import Store

import crash_writer
from crash_writer import key, point

KILLS = 30


def expected_points(ack_path: str) -> dict:
    acked = {}
    with open(ack_path) as f:
        for line in f:
            parts = line.split()
            if len(parts) != 2:
                continue  # a line cut by the kill
            run, batch = map(int, parts)
            for i in range(crash_writer.POINTS_PER_BATCH):
                s, ts, v = point(run, batch, i)
                acked[(s, ts)] = v
    return acked


def series_index(k: str) -> int:
    for s in range(crash_writer.SERIES):
        m, tags, f = key(s)
        if k.startswith(m) and k.endswith(" " + f) and all(f"{a}={b}" in k for a, b in tags.items()):
            return s
    raise AssertionError(f"unexpected series {k!r}")


async def check(data_dir: str, acked: dict, runs: int) -> int:
    async with Store(data_dir, crash_writer.crash_config()) as store:
        assert store.stats("raw")["raw"]["evicted_blocks"] == 0
        present = {}
        for cols in await store.scan("raw"):
            s = series_index(cols.key)
            for ts, v in zip(cols.timestamps, cols.values):
                present[(s, ts)] = v
    missing = [k for k in acked if k not in present]
    assert not missing, f"{len(missing)} acknowledged points lost, e.g. {missing[:3]}"
    for (s, ts), v in present.items():
        off = ts - crash_writer.T0
        run, rest = divmod(off, 10**12)
        batch, i = divmod(rest, 10**6)
        assert run < runs and i < crash_writer.POINTS_PER_BATCH, f"point never written: {(s, ts)}"
        assert point(run, batch, i) == (s, ts, v), f"wrong point {(s, ts, v)}"
    for k, v in acked.items():
        assert present[k] == v
    return len(present)


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_no_acknowledged_point(tmp_path):
    data_dir = str(tmp_path / "data")
    ack_path = str(tmp_path / "acks")
    rng = random.Random(4)
    script = os.path.join(os.path.dirname(__file__), "crash_writer.py")
    open(ack_path, "w").close()
    total_acked = 0
    for run in range(KILLS):
        child = subprocess.Popen([sys.executable, script, data_dir, ack_path, str(run)],
                                 stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.3, 1.5))
        if child.poll() is not None:
            pytest.fail(f"writer exited early: {child.stderr.read().decode()[-2000:]}")
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stderr.close()
        acked = expected_points(ack_path)
        present = asyncio.run(check(data_dir, acked, run + 1))
        assert present >= len(acked)
        total_acked = len(acked)
    assert total_acked > 1000  # the writers did get work done between the kills
