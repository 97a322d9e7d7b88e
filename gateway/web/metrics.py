"""``GET /metrics``: Prometheus exposition of the components' health snapshots.

One collector reads every component's ``health()`` on the event loop (through the bridge) at
scrape time, so a scrape sees one consistent moment and nothing is counted twice.
"""

from __future__ import annotations

import os

from flask import Blueprint, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from gateway.web.auth import check

bp = Blueprint("metrics", __name__)

#: Store figures exported per bucket: (health key, metric name, kind, help).
_BUCKET_METRICS = [
    ("fill", "gateway_store_fill_ratio", "gauge", "Fraction of the bucket's ring in use"),
    ("used_bytes", "gateway_store_used_bytes", "gauge", "Bytes of blocks in the bucket's ring"),
    ("max_size", "gateway_store_max_size_bytes", "gauge", "Configured size of the bucket"),
    ("points", "gateway_store_points", "gauge", "Points held by the bucket"),
    ("series", "gateway_store_series", "gauge", "Series in the bucket's catalogue"),
    ("wal_bytes", "gateway_store_wal_bytes", "gauge", "Bytes in the bucket's WAL segments"),
    ("bytes_written", "gateway_store_written_bytes", "counter",
     "Bytes written to the card (WAL and ring) since start"),
    ("points_written", "gateway_store_points_written", "counter", "Points taken since start"),
    ("too_old", "gateway_store_too_old_points", "counter",
     "Points refused as older than the retention"),
    ("type_conflicts", "gateway_store_type_conflict_points", "counter",
     "Points refused for a field type conflict"),
    ("corrupt_blocks", "gateway_store_corrupt_blocks", "counter", "Damaged blocks skipped"),
    ("wal_corrupt_records", "gateway_store_wal_corrupt_records", "counter",
     "Damaged WAL records skipped at recovery"),
    ("wal_points_lost", "gateway_store_wal_points_lost", "counter",
     "Points in damaged WAL records"),
    ("evicted_points", "gateway_store_evicted_points", "counter",
     "Points dropped because the ring was full"),
    ("expired_points", "gateway_store_expired_points", "counter",
     "Points dropped by the retention age"),
    ("dropped_before_forwarding", "gateway_store_dropped_unforwarded_points", "counter",
     "Points dropped before a replication stream sent them"),
    ("commit_errors", "gateway_store_commit_errors", "counter", "Failed WAL commits"),
]


class GatewayCollector:
    def __init__(self, state) -> None:
        self.state = state

    def collect(self):
        state = self.state
        health = state.bridge.call(_all_health, state.context)
        yield from _bucket_families(health.get("store", {}).get("buckets", {}))
        yield from _reader_families(health, state.counters.snapshot())
        up = GaugeMetricFamily("gateway_component_up", "1 while the component runs and is healthy",
                               labels=["component"])
        for name, h in health.items():
            up.add_metric([name], 1.0 if h.get("running") and h.get("healthy", True) else 0.0)
        yield up
        disk = _process_disk_writes()
        if disk is not None:
            yield CounterMetricFamily("gateway_process_disk_written_bytes",
                                      "Bytes the process caused to be written to storage "
                                      "(/proc/self/io write_bytes)", value=disk)


def _all_health(context) -> dict:
    out = {}
    for name, component in list(context.components.items()):
        try:
            out[name] = component.health()
        except Exception as e:  # one broken snapshot must not hide the others
            out[name] = {"running": False, "error": str(e)}
    return out


def _bucket_families(buckets: dict):
    for key, name, kind, doc in _BUCKET_METRICS:
        family = (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)(
            name, doc, labels=["bucket"])
        for bucket, stats in sorted(buckets.items()):
            value = stats.get(key)
            if value is not None:
                family.add_metric([bucket], float(value))
        yield family


def _reader_families(health: dict, http: dict):
    points = CounterMetricFamily("gateway_ingest_points", "Points stored per reader",
                                 labels=["reader"])
    messages = CounterMetricFamily("gateway_ingest_messages",
                                   "Messages (MQTT) or write requests (HTTP) received per reader",
                                   labels=["reader"])
    bad = CounterMetricFamily("gateway_ingest_bad", "Bad input per reader and reason",
                              labels=["reader", "reason"])
    for name, h in sorted(health.items()):
        if not name.startswith("reader:"):
            continue
        if "points_stored" in h:
            points.add_metric([name], float(h["points_stored"]))
        if "messages_received" in h:
            messages.add_metric([name], float(h["messages_received"]))
        for reason, n in sorted((h.get("bad_by_reason") or {}).items()):
            bad.add_metric([name, reason], float(n))
    points.add_metric(["http"], float(http["points_written"]))
    writes = sum(r["count"] for r in http["requests"] if r["endpoint"] in ("/api/v2/write", "/write"))
    messages.add_metric(["http"], float(writes))
    bad.add_metric(["http", "bad_line"], float(http["bad_lines"]))
    for reason, n in sorted(http["errors"].items()):
        if reason != "bad_line":
            bad.add_metric(["http", reason], float(n))
    yield points
    yield messages
    yield bad
    requests = CounterMetricFamily("gateway_http_requests", "HTTP requests by route and status",
                                   labels=["route", "code"])
    for r in http["requests"]:
        requests.add_metric([r["endpoint"], str(r["status"])], float(r["count"]))
    yield requests


def _process_disk_writes() -> float | None:
    try:
        with open(f"/proc/{os.getpid()}/io") as f:
            for line in f:
                if line.startswith("write_bytes:"):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def registry_for(state) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)  # process_resident_memory_bytes, process_cpu_seconds_total
    registry.register(GatewayCollector(state))
    return registry


@bp.get("/metrics")
def metrics():
    check("query")
    registry = current_app.extensions["gateway_metrics"]
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
