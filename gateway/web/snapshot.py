"""What the status pages show, as JSON-able dicts. These coroutines run on the event loop
(handlers call them through the bridge), where the store and the components live."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import time

from gateway import __version__
from gateway.lineprotocol import split_series_key
from gateway.web import sparkline

HOUR_NS = 3600 * 10**9
DAY_NS = 24 * HOUR_NS
#: Windows of the hour and day sparklines (one a minute, one every 20 minutes).
HOUR_WINDOWS, DAY_WINDOWS = 60, 72
#: Day sparklines are recomputed at most this often (a day of 1 Hz series is a big scan).
DAY_REFRESH_S = 60.0
#: Where the image's select-config leaves the errors of a rejected configuration file.
CONFIG_ERRORS = os.path.join(os.environ.get("RUNTIME_DIRECTORY", "/run/gateway"), "config-errors")


def clock_synchronised() -> bool | None:
    """Whether the kernel considers the clock synchronised (adjtimex state), None if unknown."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        timex = ctypes.create_string_buffer(512)  # struct timex; modes = 0 reads only
        state = libc.adjtimex(timex)
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != 5  # TIME_ERROR: the clock is not synchronised


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
    healthy = all(c["healthy"] for c in components) and not problems
    uptime = time.time() - state.started_at
    synced = clock_synchronised()
    return {
        "status": "ok" if healthy else "degraded",
        "version": __version__,
        "uptime_s": round(uptime, 1),
        "uptime_text": _age_text(uptime),
        "time": time.time(),
        "clock_synchronised": synced,
        "clock_text": {True: "synchronised", False: "not synchronised", None: "unknown"}[synced],
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


async def sensors(state, bucket: str, limit: int) -> dict:
    store = state.store
    now = time.time_ns()
    cache = state.day_sparklines.setdefault(bucket, {})
    refresh_day = now - cache.get("_at", 0) > DAY_REFRESH_S * 1e9
    rows = []
    infos = store.series(bucket)
    for info in infos[:limit]:
        day = None
        if refresh_day:
            cols = await store.scan_series(info.key, bucket, now - DAY_NS, now + 1)
            day = sparkline.sample(cols.timestamps, cols.values, now - DAY_NS, now, DAY_WINDOWS) if cols else []
            cache[info.key] = sparkline.polyline(day, now - DAY_NS, now)
            hour_cols = _since(cols, now - HOUR_NS) if cols else None
        else:
            cols = await store.scan_series(info.key, bucket, now - HOUR_NS, now + 1)
            hour_cols = (cols.timestamps, cols.values) if cols else None
        if hour_cols is not None and len(hour_cols[0]):
            ts, vs = hour_cols
            last = (ts[-1], vs[-1])
        else:
            ts, vs = [], []
            last = await store.last(info.key, bucket)
        hour = sparkline.sample(ts, vs, now - HOUR_NS, now, HOUR_WINDOWS)
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
            "spark_hour": sparkline.polyline(hour, now - HOUR_NS, now),
            "spark_day": cache.get(info.key, ""),
        })
    if refresh_day:
        cache["_at"] = now
    readers = []
    for name, component in list(state.context.components.items()):
        if not name.startswith("reader:"):
            continue
        h = component.health()
        error = h.get("error") or h.get("last_error") or h.get("last_store_error")
        readers.append({"name": name, "healthy": bool(h.get("running")) and bool(h.get("healthy", True)),
                        "last_error": str(error) if error else None})
    return {"bucket": bucket, "series_total": len(infos), "series": rows, "readers": readers}


def _since(cols, start_ns: int):
    import bisect
    i = bisect.bisect_left(cols.timestamps, start_ns)
    return cols.timestamps[i:], cols.values[i:]


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
        })
    return {"buckets": buckets}


async def ingest(state) -> dict:
    dead = []
    readers = []
    for name, component in list(state.context.components.items()):
        if not name.startswith("reader:"):
            continue
        h = component.health()
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


async def planned(state, prefix: str) -> dict:
    """Tasks and replication: their components' health once they exist, else marked planned."""
    found = {name: c.health() for name, c in list(state.context.components.items())
             if name == prefix or name.startswith(prefix + ":")}
    return {"available": bool(found), "components": found,
            "state_text": "running" if found else "planned: not part of this version yet"}


async def configuration(state) -> dict:
    from gateway.config.render import render

    return {"toml": render(state.config)}
