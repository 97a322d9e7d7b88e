"""The gateway SIGKILLed again and again in the middle of sending: the upstream ends up with
exactly the store's points; resends are bounded and counted (VictoriaMetrics without
deduplication shows every resent sample in its raw export)."""

from __future__ import annotations

import asyncio
import os
import pathlib
import random
import signal
import subprocess
import sys

import pytest

from gateway.replication.stream import POSITION_LAG_BATCHES, ReplicationStream
from gateway.store import Store
from replication_support import (RECENT_NS, local_content, store_config, stream_config,
                                 strip_labels, vm_expected, wait_until_equal)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HERE = pathlib.Path(__file__).parent
KILLS = 20


def start(data_dir, url, first):
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    args = [sys.executable, str(HERE / "crash_gateway.py"), data_dir, url, str(first), str(RECENT_NS)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_twenty_sigkills_mid_batch(tmp_path, victoria):
    data_dir = str(tmp_path / "data")
    rng = random.Random(14)
    first = 0
    for _ in range(KILLS):
        proc = start(data_dir, victoria.url, first)
        acked = None
        for _ in range(rng.randrange(20, 120)):  # writes acknowledged before the kill
            line = proc.stdout.readline()
            if not line:
                break
            acked = int(line)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert acked is not None
        first = acked + 1
    # The last start sends what is left (in this process, which may then read the store).
    async def drain():
        store = await Store(data_dir, store_config()).open()
        stream = ReplicationStream(stream_config("influxdb_v2", victoria.url, org="o",
                                                 bucket="gw", buckets=["raw"]), store)
        await stream.start()
        try:
            async def expected():
                return vm_expected(await local_content(store, ("raw",)))

            result = await wait_until_equal(expected, lambda: strip_labels(victoria.export(), "db"))
            return result, await expected()
        finally:
            await stream.stop()
            await store.close()

    (problems, duplicates), expected = asyncio.run(drain())
    assert problems == [], "\n".join(problems)
    points = sum(len(p) for p in expected.values())
    # A crash resends at most what was in flight: the batch being sent and those acknowledged
    # whose position was not written yet, POSITION_LAG_BATCHES in all, of 2 kB (~50 points
    # here); a head send is one of them. The points sent from heads before a crash are not
    # sent again (the write-order position; see docs/replication.md): without it a crash
    # resends every head's points (10 series x 64 points at most, ~320 on average).
    assert duplicates <= KILLS * POSITION_LAG_BATCHES * 50, (duplicates, points)
    print(f"{KILLS} kills: {points} points, {duplicates} resent samples in the raw export")
