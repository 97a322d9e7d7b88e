"""What the status pages show, as JSON-able dicts. The coroutines run on the event loop
(handlers call them through the bridge), where the store and the components live; the
sensors page reads series, so :func:`sensors` runs on the request's thread instead and reaches
the store through :class:`gateway.store.proxy.StoreProxy` (the loop only serves its reads)."""

from __future__ import annotations

import asyncio
import bisect
import os
import time

from gateway import __version__
from gateway.lineprotocol import split_series_key
from gateway.store.bucket import WAL_DAMAGE
from gateway.store.proxy import StoreProxy
from gateway.web.sparkline import SparkFold

HOUR_NS = 3600 * 10**9
DAY_NS = 24 * HOUR_NS
#: Day sparklines are recomputed at most this often (a day of 1 Hz series is a big scan).
DAY_REFRESH_S = 60.0
#: Runs of the tasks page's list of recent runs (newest first).
RECENT_RUNS_SHOWN = 30
#: Where the image's select-config leaves the errors of a rejected configuration file.
CONFIG_ERRORS = os.path.join(os.environ.get("RUNTIME_DIRECTORY", "/run/gateway"), "config-errors")


def config_problems() -> list[str]:
    try:
        with open(CONFIG_ERRORS, encoding="utf-8", errors="replace") as f:
            return [line.rstrip() for line in f if line.strip()]
    except OSError:
        return []


def _components(context) -> list[dict]:
    out = []
    for name, component in list(context.components.items()):
        try:
            h = component.health()
        except Exception as e:
            h = {"running": False, "error": str(e)}
        error = h.get("error") or h.get("last_error") or h.get("last_store_error")
        healthy = bool(h.get("running")) and bool(h.get("healthy", True)) and not h.get("error")
        out.append({"name": name, "running": bool(h.get("running")), "healthy": healthy,
                    "error": str(error) if error else None})
    return out


def _age_text(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _size_text(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


async def overview(state) -> dict:
    components = _components(state.context)
    problems = config_problems()
    uptime = time.time() - state.started_at
    clock = state.context.clock
    synced = clock.source.synchronised()
    clock_error = getattr(clock.source, "unknown_reason", None) if synced is None else None
    # Where the clock rule applies, a state that cannot be read defeats it: degraded.
    healthy = (all(c["healthy"] for c in components) and not problems
               and not (clock_error and clock.require_sync))
    store = state.context.components.get("store")
    hold = store.hold.status() if store is not None and store.hold is not None else None
    return {
        "status": "ok" if healthy else "degraded",
        "version": __version__,
        "uptime_s": round(uptime, 1),
        "uptime_text": _age_text(uptime),
        "time": time.time(),
        "clock_synchronised": synced,
        "clock_text": {True: "synchronised", False: "not synchronised",
                       None: "unknown: cannot be read" if clock_error else "unknown"}[synced],
        "clock_error": clock_error,
        # Points the gateway timed before the clock was synchronised wait in the store's hold
        # until it is (gateway/clock.py); the hold's figures, or None when the rule is off.
        "clock_holding": not clock.trusted(),
        "clock_hold": hold,
        "config_problems": problems,
        "components": components,
        "components_healthy": sum(c["healthy"] for c in components),
        "components_total": len(components),
    }


def _value_text(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str):
        return value if len(value) <= 40 else value[:39] + "…"
    return str(value)


def sensors(state, bucket: str, limit: int) -> dict:
    """The sensors page (request thread): each series' last value, and its last hour and last
    day as sparklines of min, max and mean per pixel column."""
    store = StoreProxy(state.store, state.bridge)
    now = time.time_ns()
    cache = state.day_sparklines.setdefault(bucket, {})
    with state.sparkline_lock:   # one request recomputes the day; the others show the last one
        refresh_day = now - cache.get("_at", 0) > DAY_REFRESH_S * 1e9
        if refresh_day:
            cache["_at"] = now
    infos = store.series(bucket)
    rows = asyncio.run(_series_rows(store, bucket, infos[:limit], now, cache, refresh_day))
    readers = state.bridge.call(_readers, state.context)
    return {"bucket": bucket, "series_total": len(infos), "series": rows, "readers": readers}


async def _series_rows(store, bucket: str, infos: list, now: int, day_cache: dict,
                       refresh_day: bool) -> list[dict]:
    hours = {info.key: SparkFold(now - HOUR_NS, now) for info in infos}
    days = {info.key: SparkFold(now - DAY_NS, now) for info in infos} if refresh_day else {}
    lasts = {}
    async for info, ts, values in store.stream_many(infos, bucket,
                                                    now - (DAY_NS if refresh_day else HOUR_NS),
                                                    now + 1):
        if refresh_day:
            days[info.key].add(ts, values)
        if ts[-1] >= now - HOUR_NS:
            hours[info.key].add(*_since(ts, values, now - HOUR_NS))
        lasts[info.key] = (ts[-1], values[-1])
    for key, fold in days.items():
        day_cache[key] = fold.drawing()
    rows = []
    for info in infos:
        last = lasts.get(info.key)
        if last is None:   # nothing in the span read: the series' newest point, however old
            last = await store.last(info.key, bucket)
        measurement, tags, field = split_series_key(info.key)
        value = last[1] if last else None
        if info.type_name == "boolean" and value is not None:
            value = bool(value)
        age = (now - last[0]) / 1e9 if last else None
        rows.append({
            "key": info.key, "name": f"{measurement} {field}",
            "measurement": measurement, "tags": tags, "field": field,
            "tags_text": ", ".join(f"{k}={v}" for k, v in tags.items()),
            "type": info.type_name, "last_time": last[0] / 1e9 if last else None,
            "last_value": value, "last_value_text": "-" if last is None else _value_text(value),
            "age_s": age, "age_text": _age_text(age),
            "spark_hour": hours[info.key].drawing(),
            "spark_day": day_cache.get(info.key, {"line": "", "band": ""}),
        })
    return rows


def _readers(context) -> list[dict]:
    readers = []
    for name, h in _healths(context, "reader:"):
        error = h.get("error") or h.get("last_error") or h.get("last_store_error")
        readers.append({"name": name, "healthy": bool(h.get("running")) and bool(h.get("healthy", True)),
                        "last_error": str(error) if error else None})
    return readers


def _healths(context, prefix: str) -> list[tuple[str, dict]]:
    """(name, health) of each component whose name starts with ``prefix`` (loop thread)."""
    return [(name, component.health()) for name, component in list(context.components.items())
            if name.startswith(prefix)]


def _since(ts, values, start_ns: int):
    i = bisect.bisect_left(ts, start_ns)
    return (ts[i:], values[i:]) if i else (ts, values)


async def storage(state) -> dict:
    stats = state.store.stats()
    uptime = max(1.0, time.time() - state.started_at)
    buckets = []
    for name, s in sorted(stats.items()):
        per_day = s["bytes_written"] / uptime * 86400
        oldest = s.get("oldest")
        buckets.append({
            "name": name, "fill": s["fill"], "fill_pct": round(s["fill"] * 100, 2),
            "fill_text": f"{s['fill'] * 100:.1f} %",
            "used_bytes": s["used_bytes"], "max_size": s["max_size"],
            "size_text": f"{_size_text(s['used_bytes'])} of {_size_text(s['max_size'])}",
            "points": s["points"], "series": s["series"],
            "oldest": oldest / 1e9 if oldest is not None else None,
            "oldest_text": (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(oldest / 1e9))
                            if oldest is not None else "-"),
            "retention_s": s["retention_s"],
            "retention_text": _age_text(s["retention_s"]) if s["retention_s"] else "size only",
            "bytes_per_point": s["bytes_per_point"],
            "bytes_per_point_text": (f"{s['bytes_per_point']:.2f}" if s["bytes_per_point"] else "-"),
            "bytes_written": s["bytes_written"],
            "written_per_day": per_day, "written_per_day_text": _size_text(per_day) + "/day",
            "corrupt_blocks": s["corrupt_blocks"], "too_old": s["too_old"],
            "dropped_before_forwarding": s["dropped_before_forwarding"],
            # What WAL replay found damaged (kept across restarts): public here, unlike /metrics,
            # so that a bench rig can check it after a power cut.
            "wal_damage": {name: s[name] for name in WAL_DAMAGE},
            "wal_damage_text": ", ".join(f"{name.removeprefix('wal_').replace('_', ' ')}: {s[name]}"
                                         for name in WAL_DAMAGE if s[name]) or "none",
        })
    return {"buckets": buckets}


async def ingest(state) -> dict:
    dead = []
    readers = []
    for name, h in _healths(state.context, "reader:"):
        readers.append({"name": name, "points": h.get("points_stored"),
                        "messages": h.get("messages_received"),
                        "bad": h.get("bad_messages", 0),
                        "bad_by_reason": dict(h.get("bad_by_reason") or {}),
                        "bad_text": ", ".join(f"{k}: {v}" for k, v in
                                              sorted((h.get("bad_by_reason") or {}).items())) or "none"})
        for d in h.get("dead_letters") or []:
            dead.append({"reader": name, "time": d.get("time"), "id": f"{name}/{d.get('time')}", "topic": d.get("topic"),
                         "reason": d.get("reason"), "error": d.get("error"),
                         "payload": d.get("payload"), "payload_bytes": d.get("payload_bytes")})
    http = state.counters.snapshot()
    return {
        "readers": readers,
        "dead_letters": dead[-50:],
        "http": {"points_written": http["points_written"], "lines_received": http["lines_received"],
                 "bad_lines": http["bad_lines"], "errors": http["errors"]},
        "bad_http_lines": http["recent_bad_lines"][::-1],
    }


def _when_text(unix_s: float | None, now: float) -> str:
    return "never" if unix_s is None else f"{_age_text(now - unix_s)} ago"


def _duration_text(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else _age_text(seconds)


async def tasks(state) -> dict:
    """The task scheduler's tasks (last run, counts) and the newest runs of all of them."""
    component = state.context.components.get("tasks")
    h = component.health() if component is not None else {"tasks": {}, "recent_runs": []}
    now = time.time()
    out = []
    for name, t in sorted(h["tasks"].items()):
        run = t["last_run"]
        out.append({
            "name": name,
            "schedule_text": (f"every {_age_text(t['every_s'])}" if t["every_s"]
                              else f"cron {t['cron']}"),
            "healthy": run is None or run["status"] == "success",
            "last_run_text": _when_text(run["finished"] / 1e9 if run else None, now),
            "status": run["status"] if run else "not run yet",
            "duration_text": _duration_text((run["finished"] - run["started"]) / 1e9) if run else "-",
            "runs_text": f"{t['runs']['success']} ok, {t['runs']['failed']} failed",
            "dirty": t["dirty"],
            "error": run["error"] if run else None,
        })
    recent = []
    for run in reversed(h["recent_runs"][-RECENT_RUNS_SHOWN:]):
        recent.append({
            "id": f"{run['task']}/{run['scheduled_for']}/{run['started']}", "task": run["task"],
            "ok": run["status"] == "success", "status": run["status"], "reason": run["reason"],
            "scheduled_text": time.strftime("%Y-%m-%d %H:%M:%S UTC",
                                            time.gmtime(run["scheduled_for"] / 1e9)),
            "duration_text": _duration_text((run["finished"] - run["started"]) / 1e9),
            "points_text": f"{run['points_read']} read, {run['points_written']} written",
            "error": run["error"],
        })
    return {"scheduler": component is not None, "tasks": out, "recent_runs": recent}


async def replication(state) -> dict:
    """Each replication stream: state, lag, backlog, what it sent, its last error; and the
    lines upstreams refused (dead letters), newest first."""
    now = time.time()
    streams = []
    dead = []
    for name, h in _healths(state.context, "replication:"):
        buckets = h.get("buckets") or {}
        counters = h.get("counters") or {}
        lag = max((b["lag_seconds"] for b in buckets.values()), default=0.0)
        hours_left = [b["hours_left"] for b in buckets.values() if b["hours_left"] is not None]
        stream = h.get("stream", name.split(":", 1)[1])
        streams.append({
            "name": stream, "kind": h.get("kind"), "url": h.get("url"),
            "state": h.get("state", "stopped"),
            "healthy": bool(h.get("running")) and h.get("state") in ("sending", "idle", "starting"),
            "lag_s": lag, "lag_text": _age_text(lag) if lag else "none",
            "backlog_points": sum(b["backlog_points"] for b in buckets.values()),
            "backlog_text": (f"{sum(b['backlog_points'] for b in buckets.values())} points, "
                             f"{_size_text(sum(b['backlog_bytes'] for b in buckets.values()))}"),
            "outage_text": (f"{min(hours_left):.1f} h" if hours_left else "-"),
            "sent_points": counters.get("points_sent", 0),
            "dropped_text": (f"{sum(b['dropped_blocks'] for b in buckets.values())} blocks, "
                             f"{sum(b['dropped_before_forwarding'] for b in buckets.values())} points"),
            "last_ack_text": _when_text(h.get("last_ack_at"), now),
            "last_error": h.get("last_error") or h.get("error"),
            "last_error_text": _when_text(h.get("last_error_at"), now),
        })
        for d in h.get("dead_letters") or []:
            dead.append({"id": f"{stream}/{d['time']}", "stream": stream, "time": d["time"],
                         "bucket": d["bucket"], "line": d["line"], "message": d["message"]})
    dead.sort(key=lambda d: d["time"], reverse=True)
    return {"streams": streams, "dead_letters": dead[:50]}


async def configuration(state) -> dict:
    from gateway.config.render import render

    return {"toml": render(state.config)}
