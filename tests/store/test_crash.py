"""Killed at random moments, the store keeps every acknowledged point and invents none; points
nobody waited for (local sensors) cost at most what arrived within local_sync of the kill."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import pytest

from gateway.store import Store

import crash_writer
from crash_writer import LOCAL_BASE, key, point

KILLS = 30
#: What a local point may wait beyond local_sync before its commit is durable: the commit's
#: own write and sync, and the commit loop's turn on a machine shared with other work.
COMMIT_SLACK_S = 5.0


@dataclass
class Ledger:
    """What the writers were told, from the acknowledgement file."""

    acked: dict = field(default_factory=dict)           # (series, time) -> value: durable
    local_sent: dict = field(default_factory=dict)      # (run, batch) -> wall time taken


def read_ledger(ack_path: str) -> Ledger:
    ledger = Ledger()
    durable_locals: dict[int, int] = {}
    with open(ack_path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 4 and parts[0] == "L":
                ledger.local_sent[(int(parts[1]), int(parts[2]))] = float(parts[3])
            elif len(parts) == 3:
                run, batch, locals_before = map(int, parts)
                add_batch(ledger.acked, run, batch)
                durable_locals[run] = max(durable_locals.get(run, 0), locals_before)
            # anything else is a line cut by the kill
    for run, n in durable_locals.items():
        for batch in range(LOCAL_BASE, LOCAL_BASE + n):   # rode along with an acknowledged sync
            add_batch(ledger.acked, run, batch)
    return ledger


def add_batch(points: dict, run: int, batch: int) -> None:
    n = crash_writer.LOCAL_POINTS_PER_BATCH if batch >= LOCAL_BASE else crash_writer.POINTS_PER_BATCH
    for i in range(n):
        s, ts, v = point(run, batch, i)
        points[(s, ts)] = v


def series_index(k: str) -> int:
    for s in range(crash_writer.SERIES + crash_writer.LOCAL_SERIES):
        m, tags, f = key(s)
        if k.startswith(m) and k.endswith(" " + f) and all(f"{a}={b}" in k for a, b in tags.items()):
            return s
    raise AssertionError(f"unexpected series {k!r}")


async def check(data_dir: str, acked: dict, runs: int) -> dict:
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
        assert run < runs, f"point never written: {(s, ts)}"
        assert point(run, batch, i) == (s, ts, v), f"wrong point {(s, ts, v)}"
    for k, v in acked.items():
        assert present[k] == v
    return present


def local_batches_lost(ledger: Ledger, present: dict, run: int) -> list[tuple[int, float]]:
    """(batch, time taken) of the run's local batches that were taken but are not stored."""
    lost = []
    for (r, batch), sent in sorted(ledger.local_sent.items()):
        if r == run and point(run, batch, 0)[:2] not in present:
            lost.append((batch, sent))
    return lost


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_no_acknowledged_point(tmp_path):
    """Runs alternate: waiting writers with a local-sensor writer beside them, and the local
    writer alone (its points become durable only through local_sync)."""
    data_dir = str(tmp_path / "data")
    ack_path = str(tmp_path / "acks")
    rng = random.Random(4)
    script = os.path.join(os.path.dirname(__file__), "crash_writer.py")
    local_sync = float(crash_writer.crash_config().local_sync)
    open(ack_path, "w").close()
    total_acked = 0
    for run in range(KILLS):
        mode = "mixed" if run % 2 == 0 else "local"
        child = subprocess.Popen([sys.executable, script, data_dir, ack_path, str(run), mode],
                                 stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.3, 1.5))
        if child.poll() is not None:
            pytest.fail(f"writer exited early: {child.stderr.read().decode()[-2000:]}")
        killed_at = time.time()
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stderr.close()
        ledger = read_ledger(ack_path)
        present = asyncio.run(check(data_dir, ledger.acked, run + 1))
        assert len(present) >= len(ledger.acked)
        total_acked = len(ledger.acked)
        # What the kill cost of the local points: only the newest batches (none after a
        # batch that was kept), all taken within local_sync (plus a commit) of the kill.
        lost = local_batches_lost(ledger, present, run)
        taken = sorted(b for (r, b) in ledger.local_sent if r == run)
        if lost:
            assert [b for b, _ in lost] == taken[-len(lost):], "a local batch was lost before a kept one"
            oldest = min(t for _, t in lost)
            assert killed_at - oldest <= local_sync + COMMIT_SLACK_S, (
                f"run {run}: local points taken {killed_at - oldest:.2f} s before the kill were "
                f"lost (local_sync {local_sync} s)")
    assert total_acked > 1000  # the writers did get work done between the kills
