"""Prometheus remote write (protobuf + snappy) to a real Prometheus and to VictoriaMetrics:
every numeric point arrives as float64 at its millisecond; strings are skipped and counted."""

from __future__ import annotations

import asyncio
import math

import pytest

from gateway.replication.remote_write import label_name, metric_name
from gateway.replication.stream import ReplicationStream
from gateway.store import Store
from replication_support import (RECENT_NS, SECOND, VM_DIGITS, local_content, store_config,
                                 stream_config, strip_labels, wait_until_equal, write_rows)

pytestmark = pytest.mark.integration


def remote_write_expected(local: dict) -> dict:
    """The documented mapping: metric <measurement>_<field>, tags as labels, float64 values,
    millisecond times; strings and non-finite values left out."""
    from gateway.lineprotocol import split_series_key

    out = {}
    for key, points in local.items():
        measurement, tags, field = split_series_key(key)
        pts = [(ts // 1_000_000, float(v)) for ts, v in points
               if not isinstance(v, str) and math.isfinite(float(v))]
        if pts:
            labels = tuple(sorted((label_name(k), v) for k, v in tags.items()))
            out[(metric_name(measurement, field), labels)] = pts
    return out


def mixed_rows(start, n):
    for i in range(n):
        t = start + i * SECOND
        yield ("env", {"room": "lab 1", "__kind": "x"}, "temp-c", t, 21.5 + i / 7)
        yield ("env", {"room": "lab 1", "__kind": "x"}, "count", t, i * 3)
        yield ("dev", {}, "on", t, i % 2 == 0)
        yield ("dev", {}, "label", t, "text")
        yield ("dev", {}, "bad", t, float("nan") if i % 5 == 0 else 1.0)


async def run_stream(tmp_path, url, export, n=120, digits=None):
    store = await Store(str(tmp_path / "data"), store_config()).open()
    stream = ReplicationStream(stream_config("prometheus_remote_write", url), store)
    await stream.start()
    try:
        await write_rows(store, mixed_rows(RECENT_NS, n))
        await write_rows(store, [("env_1m", {}, "mean", RECENT_NS, 21.75)], "rollup")

        async def expected():
            return remote_write_expected(await local_content(store))

        problems, duplicates = await wait_until_equal(expected, export, digits=digits)
        assert problems == [], "\n".join(problems)
        assert stream.status.counters["skipped_strings"] == n
        assert stream.status.counters["skipped_nonfinite"] == n // 5
        return duplicates
    finally:
        await stream.stop()
        await store.close()


def test_prometheus_receives_every_numeric_point(tmp_path, prometheus):
    asyncio.run(run_stream(tmp_path, prometheus.write_url, prometheus.export))


def test_victoria_metrics_receives_every_numeric_point(tmp_path, victoria):
    duplicates = asyncio.run(run_stream(tmp_path, victoria.url + "/api/v1/write",
                                        lambda: strip_labels(victoria.export()), digits=VM_DIGITS))
    assert duplicates == 0
