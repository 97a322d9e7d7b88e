"""A restarted stream resends nothing it had sent: points it sent from heads, whether still in
heads after the restart or sealed into blocks after its cursor meanwhile (by a checkpoint, or
directly at a commit), and late points written into old windows, are known from the WAL up
to its write-order position. Each run
ends with the end-to-end check against VictoriaMetrics, whose raw export (no deduplication)
shows every resent sample."""

from __future__ import annotations

import asyncio

import pytest

from gateway.config.units import parse_size
from gateway.replication.stream import ReplicationStream
from gateway.store import Store
from replication_support import (RECENT_NS, SECOND, VM_DIGITS, local_content, rows, store_config,
                                 stream_config, vm_content, vm_expected, wait_until_equal,
                                 write_rows)

pytestmark = pytest.mark.integration

SERIES = 3


def test_a_restart_resends_no_head_point_and_no_late_point(tmp_path, victoria):
    data_dir = str(tmp_path / "data")
    # Points stay in heads until sealed by hand. WAL segments of a few records (small
    # segments, small writes), so that sealing makes every segment but the current one
    # deletable unless a stream still needs it.
    config = store_config(head_points=1000, wal_segment_size=parse_size("256B"))
    upstream = stream_config("influxdb_v2", victoria.url, org="o", bucket="gw",
                             flush_interval="200ms", buckets=["raw"])

    async def run(write, after_stop=None, check_start=None) -> dict:
        """Opens the store, starts a stream, writes, waits until VictoriaMetrics holds exactly
        the store's points (no sample twice), stops the stream, runs ``after_stop`` (which
        leaves blocks after the cursor holding points sent from heads) and closes the store.
        Returns the stream's counters."""
        store = await Store(data_dir, config).open()
        stream = ReplicationStream(upstream, store)
        await stream.start()
        try:
            if check_start is not None:
                check_start(stream)
            await write(store)

            async def expected():
                return vm_expected(await local_content(store, ("raw",)))

            problems, duplicates = await wait_until_equal(expected, lambda: vm_content(victoria),
                                                          digits=VM_DIGITS)
            assert problems == [], "\n".join(problems)
            while stream.position("raw") < store.last_sealed_seq("raw"):
                await asyncio.sleep(0.1)   # every block read (the pytest timeout bounds it)
            problems, duplicates = await wait_until_equal(expected, lambda: vm_content(victoria),
                                                          digits=VM_DIGITS)
            assert problems == [], "\n".join(problems)
            assert duplicates == 0
            if after_stop is not None:
                await stream.stop()
                await after_stop(store)
            return dict(stream.status.counters)
        finally:
            await stream.stop()
            await store.close()

    async def first(store):
        await write_rows(store, rows(SERIES, RECENT_NS, 30))
        await store.flush(seal=True)                                 # blocks
        await write_rows(store, rows(SERIES, RECENT_NS + 30 * SECOND, 40), per_batch=15)  # heads
        # late points, older than the sealed blocks of their series
        await write_rows(store, rows(SERIES, RECENT_NS - 600 * SECOND, 5))

    async def second(store):
        await write_rows(store, rows(SERIES, RECENT_NS + 70 * SECOND, 40), per_batch=15)  # kept
        await write_rows(store, rows(SERIES, RECENT_NS - 300 * SECOND, 5))   # late, kept

    async def third(store):
        await write_rows(store, rows(SERIES, RECENT_NS + 110 * SECOND, 10))
        await store.flush(seal=True)     # the heads sent before the restart become blocks

    async def seal(store):
        await store.flush(seal=True)

    async def fourth(store):
        await write_rows(store, rows(SERIES, RECENT_NS + 200 * SECOND, 20))    # heads, sent

    async def fill_heads(store):
        # One write that fills every head: sealed directly at its commit, the 20 points sent
        # from the head (in the WAL) and the 1,000 new ones (never in the WAL) in one block.
        await write_rows(store, rows(SERIES, RECENT_NS + 220 * SECOND, 1000, SECOND // 100),
                         per_batch=SERIES * 1000)
        assert store.bucket("raw").heads.counters()["direct_sealed"] == SERIES

    async def nothing(store):
        pass

    def lag_known_at_start(stream):
        # blocks after the cursor (sealed after the last run's sends): the lag counts at once
        assert stream.stats()["buckets"]["raw"]["lag_seconds"] > 3600

    counters = asyncio.run(run(first, after_stop=seal))
    assert counters["head_points_sent"] >= SERIES * 45
    # The heads sent by the first run were sealed after its stream stopped, into blocks after
    # its cursor: this run skips every one of their points.
    counters = asyncio.run(run(second, check_start=lag_known_at_start))
    assert counters["points_already_sent"] == SERIES * 45
    assert counters["points_sent"] == SERIES * 45        # this run's points, once
    # The heads sent by the second run are still heads when this run starts (replayed from the
    # WAL); sealed during the run, their blocks are skipped too.
    counters = asyncio.run(run(third))
    assert counters["points_sent"] == SERIES * 10
    assert counters["points_already_sent"] >= SERIES * 45
    # Heads sealed directly at commit time after the stream stopped: their logged points were
    # sent, the others are sent now.
    asyncio.run(run(fourth, after_stop=fill_heads))
    counters = asyncio.run(run(nothing))
    assert counters["points_already_sent"] == SERIES * 20
    assert counters["points_sent"] == SERIES * 1000
