"""Replication to a real VictoriaMetrics over InfluxDB line protocol (/api/v2/write)."""

from __future__ import annotations

import asyncio

import pytest

from gateway.store import Store
from gateway.replication.stream import ReplicationStream
from replication_support import (RECENT_NS, SECOND, local_content, rows, store_config,
                                 stream_config, vm_content, vm_expected, wait_until_equal,
                                 write_rows)

pytestmark = pytest.mark.integration

def test_sealed_blocks_heads_and_rollups_arrive_exactly(tmp_path, victoria):
    """Points in sealed blocks, points still in heads (a head holds 64 here), late points and
    rollup points all reach VictoriaMetrics, each once, values exact as float64."""

    async def main():
        store = await Store(str(tmp_path / "data"), store_config()).open()
        stream = ReplicationStream(stream_config("influxdb_v2", victoria.url, org="o",
                                                 bucket="gw"), store)
        await stream.start()
        try:
            await write_rows(store, rows(3, RECENT_NS, 150))            # sealed + heads
            await write_rows(store, [("env", {"room": "r0"}, "temp", RECENT_NS - 30 * SECOND, 1.5)])
            await write_rows(store, [("env_1m", {"room": "r0"}, "mean", RECENT_NS, 21.25),
                                     ("env_1m", {"room": "r0"}, "count", RECENT_NS, 60)], "rollup")
            await write_rows(store, [("dev", {}, "on", RECENT_NS, True),
                                     ("dev", {}, "n", RECENT_NS, -(2**53)),
                                     ("dev", {}, "label", RECENT_NS, "text")])

            async def expected():
                return vm_expected(await local_content(store))

            problems, duplicates = await wait_until_equal(expected, lambda: vm_content(victoria))
            assert problems == [], '\n'.join(problems)
            assert duplicates == 0
            assert stream.status.counters["head_points_sent"] > 0  # not waiting for seals
            stats = stream.stats()
            assert stats["state"] in ("idle", "sending")
            assert stats["last_error"] is None
        finally:
            await stream.stop()
            await store.close()

    asyncio.run(main())
