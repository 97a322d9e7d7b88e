"""Fixtures of the replication tests: real upstreams on free loopback ports, stopped by PID."""

from __future__ import annotations

import pytest

from upstreams import FaultProxy, InfluxDB, Prometheus, VictoriaMetrics


@pytest.fixture
def victoria(tmp_path):
    server = VictoriaMetrics(tmp_path / "vm")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def influxdb(tmp_path):
    server = InfluxDB(tmp_path / "influxdb")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def prometheus(tmp_path):
    server = Prometheus(tmp_path / "prometheus")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def proxy_to():
    proxies = []

    def make(server):
        p = FaultProxy(("127.0.0.1", server.port))
        proxies.append(p)
        return p

    yield make
    for p in proxies:
        p.close()
