"""The WAL sync latency histogram: what /metrics shows is what prometheus_client's own
Histogram shows for the same syncs, and a store that only reads never loads prometheus_client."""

from __future__ import annotations

import subprocess
import sys

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from gateway.store.commit import SYNC_SECONDS_BUCKETS, SyncSeconds


class _Families:
    def __init__(self, families) -> None:
        self.families = families

    def collect(self):
        return self.families


def _exposition(families) -> list[str]:
    registry = CollectorRegistry()
    registry.register(_Families(list(families)))
    # (*_created: the time a Histogram was made, which the store does not export)
    return [line for line in generate_latest(registry).decode().splitlines()
            if "_created" not in line]


def test_exposition_equals_a_prometheus_histogram():
    ours = SyncSeconds()
    theirs = Histogram(SyncSeconds.NAME, "Time one WAL fdatasync took", ["bucket"],
                       registry=None, buckets=SYNC_SECONDS_BUCKETS)
    # on a bound, between bounds, below the first, above the last
    for bucket, seconds in [("raw", 0.0005), ("raw", 0.003), ("rollup", 20.0), ("raw", 0.0001),
                            ("raw", 1.0), ("rollup", 0.25), ("raw", 0.003)]:
        ours.observe(bucket, seconds)
        theirs.labels(bucket).observe(seconds)
    assert _exposition(ours.collect()) == _exposition(theirs.collect())
    assert 'gateway_store_wal_sync_seconds_bucket{bucket="raw",le="0.005"} 4.0' in \
        _exposition(ours.collect())


def test_no_sync_yet_gives_an_empty_family():
    (family,) = SyncSeconds().collect()
    assert family.name == SyncSeconds.NAME and family.samples == []


def test_a_store_that_only_reads_does_not_load_prometheus_client(tmp_path):
    code = ("import asyncio, sys\n"
            "from gateway.config.model import StoreSection\n"
            "from gateway.store import Store\n"
            "async def main():\n"
            f"    async with Store({str(tmp_path)!r}, StoreSection()) as store:\n"
            "        await store.flush(seal=True)\n"
            "asyncio.run(main())\n"
            "print('prometheus_client' in sys.modules)\n")
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert got.stdout.strip() == "False"
