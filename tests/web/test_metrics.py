"""/metrics of a live gateway with a task that succeeds, one that fails and a replication stream
whose upstream is down: WAL syncs and their latency histogram, task runs by outcome with the
last run's time and duration, replication lag, backlog, errors and state, running queries, bad
HTTP input by reason."""

import re
import socket
import time

import pytest

from web_harness import free_port, start_gateway

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: The conditions below (a task run, a failed send) come within seconds; this bounds the wait.
WAIT_S = 60

CONFIG = """
[[tasks]]
flux = '''
option task = {name: "counts", every: 1s}
from(bucket: "raw") |> range(start: -task.every) |> filter(fn: (r) => r._measurement == "m_probe")
  |> aggregateWindow(every: 1s, fn: count, createEmpty: false) |> to(bucket: "rollup")
'''

[[tasks]]
flux = '''
option task = {name: "broken", every: 1s}
from(bucket: "raw") |> range(start: -task.every) |> to(bucket: "nowhere")
'''

[[replication]]
name = "upstream"
kind = "influxdb_v2"
url = "http://127.0.0.1:%d"
org = "o"
bucket = "b"
buckets = ["raw"]
flush_interval = "1s"
timeout = "1s"
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    # The upstream's port is free and nothing listens there: an upstream that is down.
    gw = start_gateway(tmp_path_factory.mktemp("gateway"), CONFIG % free_port())
    yield gw
    rc = gw.stop()
    assert rc == 0, gw.log()
    assert "Traceback" not in gw.log()


def scrape(gateway) -> str:
    status, _, body = gateway.request("GET", "/metrics", token=gateway.tokens["query"])
    assert status == 200
    return body.decode()


def wait_for(gateway, name: str, **labels) -> float:
    """The sample's value once it is there and positive."""
    deadline = time.monotonic() + WAIT_S
    while True:
        value = gateway.metric(name, **labels)
        if value:
            return value
        assert time.monotonic() < deadline, f"{name}{labels} never became positive:\n{scrape(gateway)}"
        time.sleep(0.2)


def test_wal_syncs_and_their_latency(gateway):
    assert gateway.write(f"m_probe v=1 {time.time_ns()}")[0] == 204
    syncs = gateway.metric("gateway_store_wal_syncs_total", bucket="raw")
    timed = gateway.metric("gateway_store_wal_sync_seconds_count", bucket="raw")
    assert syncs >= 1 and 1 <= timed <= syncs
    assert gateway.metric("gateway_store_wal_sync_seconds_sum", bucket="raw") > 0
    # cumulative buckets: every sync is under +Inf, and no bucket holds more than the next one
    text = scrape(gateway)
    buckets = [(float(le), float(v)) for le, v in re.findall(
        r'gateway_store_wal_sync_seconds_bucket\{bucket="raw",le="([^"]+)"\} (\S+)', text)]
    assert buckets[-1] == (float("inf"), timed)
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:]))
    assert "# TYPE gateway_store_wal_sync_seconds histogram" in text


def test_task_runs_by_outcome(gateway):
    started = time.time()
    assert gateway.write(f"m_probe v=1 {time.time_ns()}")[0] == 204
    assert wait_for(gateway, "gateway_task_runs_total", task="counts", status="success") >= 1
    assert wait_for(gateway, "gateway_task_runs_total", task="broken", status="failed") >= 1
    assert not gateway.metric("gateway_task_runs_total", task="broken", status="success")
    # the last run finished after this test began (runs happen every second) and took a while
    deadline = time.monotonic() + WAIT_S
    while (gateway.metric("gateway_task_last_run_timestamp_seconds", task="counts") or 0) < started:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert gateway.metric("gateway_task_last_run_timestamp_seconds", task="counts") <= time.time()
    assert gateway.metric("gateway_task_last_run_duration_seconds", task="counts") >= 0
    assert gateway.metric("gateway_task_dirty_windows", task="counts") is not None


def test_replication_figures(gateway):
    assert gateway.write(f"m_probe v=2 {time.time_ns()}")[0] == 204
    assert wait_for(gateway, "gateway_replication_errors_total", stream="upstream") >= 1
    assert wait_for(gateway, "gateway_replication_lag_seconds", stream="upstream", bucket="raw") > 0
    assert gateway.metric("gateway_replication_sent_points_total", stream="upstream") == 0
    for name in ("gateway_replication_backlog_points", "gateway_replication_backlog_bytes",
                 "gateway_replication_dropped_blocks_total"):
        assert gateway.metric(name, stream="upstream", bucket="raw") is not None, name
    states = {s: gateway.metric("gateway_replication_state", stream="upstream", state=s)
              for s in ("starting", "sending", "idle", "backing_off", "paused", "stopped")}
    assert sum(states.values()) == 1 and states["idle"] == 0 and states["stopped"] == 0


def test_queries_and_bad_input(gateway):
    for origin in ("http", "control", "task"):
        assert gateway.metric("gateway_queries_running", origin=origin) is not None
    before = gateway.metric("gateway_ingest_bad_total", reader="http", reason="bad_precision") or 0
    status, _, _ = gateway.write("m_probe v=1 1", precision="hours")
    assert status == 400
    assert gateway.metric("gateway_ingest_bad_total", reader="http", reason="bad_precision") == before + 1


def test_slow_client_is_cut_off_and_counted(gateway):
    before = gateway.metric("gateway_ingest_bad_total", reader="http", reason="slow_client") or 0
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=WAIT_S) as sock:
        # the headers of a write, never finished: waitress drops it after http.timeout idle
        sock.sendall(b"POST /api/v2/write?bucket=raw HTTP/1.1\r\nHost: gateway\r\n")
        assert sock.recv(1024) == b""
    assert gateway.metric("gateway_ingest_bad_total", reader="http", reason="slow_client") == before + 1
    assert gateway.write(f"m_probe v=3 {time.time_ns()}")[0] == 204   # nobody else waited
