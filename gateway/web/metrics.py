"""``GET /metrics``: Prometheus exposition of the components' health snapshots.

One collector reads every component's ``health()`` on the event loop (through the bridge) at
scrape time, so a scrape sees one consistent moment and nothing is counted twice. The WAL
sync histogram is the store's own (thread-safe), collected as the metric family it makes.
"""

from __future__ import annotations

import os

from flask import Blueprint, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from gateway.query import queries_running
from gateway.replication.status import STATES
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
    ("wal_syncs", "gateway_store_wal_syncs", "counter", "WAL syncs (group commits) started"),
]
#: Figures of a replication stream per bucket: (stats key, metric name, kind, help).
_REPLICATION_METRICS = [
    ("lag_seconds", "gateway_replication_lag_seconds", "gauge",
     "Age of the oldest point not yet sent upstream (0 when none waits)"),
    ("backlog_points", "gateway_replication_backlog_points", "gauge",
     "Points in sealed blocks not yet sent"),
    ("backlog_bytes", "gateway_replication_backlog_bytes", "gauge",
     "Bytes of sealed blocks not yet sent"),
    ("dropped_blocks", "gateway_replication_dropped_blocks", "counter",
     "Blocks the ring dropped before the stream sent them"),
]
#: Stream counters exported as they are: (counter, metric name, help).
_REPLICATION_COUNTERS = [
    ("points_sent", "gateway_replication_sent_points", "Points the upstream acknowledged"),
    ("bytes_sent", "gateway_replication_sent_bytes", "Bytes sent upstream"),
    ("errors", "gateway_replication_errors", "Failed attempts to send"),
    ("rejected_points", "gateway_replication_rejected_points",
     "Points the upstream refused for good (dead letters)"),
]
#: Where a running query came from (see gateway.query.queries_running).
QUERY_ORIGINS = ("http", "control", "task")


class GatewayCollector:
    def __init__(self, state) -> None:
        self.state = state

    def collect(self):
        state = self.state
        health = state.bridge.call(_all_health, state.context)
        yield from _bucket_families(health.get("store", {}).get("buckets", {}))
        yield from _reader_families(health, state.counters.snapshot())
        store = state.context.components.get("store")
        if store is not None:
            yield from store.wal_sync_metrics()
        yield from _task_families(health.get("tasks", {}).get("tasks", {}))
        yield from _replication_families({name.split(":", 1)[1]: h for name, h in health.items()
                                          if name.startswith("replication:")})
        running = GaugeMetricFamily("gateway_queries_running",
                                    "Flux queries running now, by where they came from",
                                    labels=["origin"])
        now_running = queries_running()
        for origin in QUERY_ORIGINS:
            running.add_metric([origin], float(now_running.get(origin, 0)))
        yield running
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


def _task_families(tasks: dict):
    runs = CounterMetricFamily("gateway_task_runs", "Task runs since start by outcome",
                               labels=["task", "status"])
    last = GaugeMetricFamily("gateway_task_last_run_timestamp_seconds",
                             "When the task's last run finished (Unix time)", labels=["task"])
    duration = GaugeMetricFamily("gateway_task_last_run_duration_seconds",
                                 "How long the task's last run took", labels=["task"])
    dirty = GaugeMetricFamily("gateway_task_dirty_windows",
                              "Windows that late data changed, waiting to be recomputed",
                              labels=["task"])
    for name, t in sorted(tasks.items()):
        for status, n in sorted(t["runs"].items()):
            runs.add_metric([name, status], float(n))
        run = t.get("last_run")
        if run is not None:
            last.add_metric([name], run["finished"] / 1e9)
            duration.add_metric([name], max(0, run["finished"] - run["started"]) / 1e9)
        dirty.add_metric([name], float(t["dirty"]))
    yield from (runs, last, duration, dirty)


def _replication_families(streams: dict):
    families = []
    for key, name, kind, doc in _REPLICATION_METRICS:
        family = (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)(
            name, doc, labels=["stream", "bucket"])
        for stream, h in sorted(streams.items()):
            for bucket, figures in sorted((h.get("buckets") or {}).items()):
                family.add_metric([stream, bucket], float(figures[key]))
        families.append(family)
    for key, name, doc in _REPLICATION_COUNTERS:
        family = CounterMetricFamily(name, doc, labels=["stream"])
        for stream, h in sorted(streams.items()):
            family.add_metric([stream], float((h.get("counters") or {}).get(key, 0)))
        families.append(family)
    state = GaugeMetricFamily("gateway_replication_state",
                              "1 for the state the stream is in", labels=["stream", "state"])
    for stream, h in sorted(streams.items()):
        for s in STATES:
            state.add_metric([stream, s], 1.0 if h.get("state") == s else 0.0)
    families.append(state)
    yield from families


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
