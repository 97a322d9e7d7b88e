"""The official influxdb-client (PyPI) writes to a live gateway with batching and gzip; the
points come back out of the store (``gateway export`` through the running daemon)."""

import time

import pytest
from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS, WriteOptions

from web_harness import cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def exported(gateway, measurement: str) -> list[str]:
    done = cli("export", "--bucket", "raw", "--measurement", measurement,
               data_dir=gateway.data_dir)
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line]


def test_batching_gzip_writer(gateway):
    base = (time.time_ns() // 10**9 - 3600) * 10**9
    with InfluxDBClient(url=gateway.url, token=gateway.tokens["write"], org="any",
                        enable_gzip=True) as client:
        with client.write_api(write_options=WriteOptions(batch_size=500, flush_interval=1000)) as w:
            for i in range(2000):
                w.write(bucket="raw", record=Point("client_batch").tag("dev", f"d{i % 4}")
                        .field("v", float(i)).time(base + i * 10**9, WritePrecision.NS))
    lines = exported(gateway, "client_batch")
    assert len(lines) == 2000
    assert f"client_batch,dev=d1 v=1 {base + 10**9}" in lines


def test_synchronous_writes_in_each_precision(gateway):
    now_s = time.time_ns() // 10**9 - 60
    with InfluxDBClient(url=gateway.url, token=gateway.tokens["admin"], org="any") as client:
        w = client.write_api(write_options=SYNCHRONOUS)
        for k, precision in enumerate([WritePrecision.S, WritePrecision.MS, WritePrecision.US,
                                       WritePrecision.NS]):
            scale = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[precision]
            w.write("raw", record=f"client_sync,p={precision} v={k}i {(now_s + k) * scale}",
                    write_precision=precision)
    lines = exported(gateway, "client_sync")
    assert sorted(lines) == sorted(f"client_sync,p={p} v={k}i {(now_s + k) * 10**9}"
                                   for k, p in enumerate(["s", "ms", "us", "ns"]))


def test_client_sees_partial_write_error(gateway):
    from influxdb_client.rest import ApiException

    now = time.time_ns()
    with InfluxDBClient(url=gateway.url, token=gateway.tokens["write"], org="any") as client:
        w = client.write_api(write_options=SYNCHRONOUS)
        with pytest.raises(ApiException) as e:
            w.write("raw", record=[f"client_partial v=1 {now}", "client_partial v=", f"client_partial v=3 {now + 1}"])
    assert e.value.status == 400
    assert "partial write error (2 written)" in e.value.body and "line 2" in e.value.body
    assert len(exported(gateway, "client_partial")) == 2


def test_client_ping(gateway):
    with InfluxDBClient(url=gateway.url, token=gateway.tokens["query"], org="any") as client:
        assert client.ping() is True
        assert client.version() == gateway.json("/api/status/overview")["version"]
