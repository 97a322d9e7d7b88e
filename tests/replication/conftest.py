"""Fixtures of the replication tests: real upstreams on free loopback ports, stopped by PID."""

from __future__ import annotations

import pytest

from hil.rigs.upstreams import FaultProxy, InfluxDB, Prometheus, VictoriaMetrics


def _serving(server):
    server.start()
    yield server
    server.stop()


@pytest.fixture
def victoria(tmp_path):
    yield from _serving(VictoriaMetrics(tmp_path / "vm"))


@pytest.fixture
def influxdb(tmp_path):
    yield from _serving(InfluxDB(tmp_path / "influxdb"))


@pytest.fixture
def prometheus(tmp_path):
    yield from _serving(Prometheus(tmp_path / "prometheus"))


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
