"""The host reader: the Pi's own health and the gateway's, every ``interval``.

Measurements: ``host_system`` (load, uptime), ``host_thermal`` (per zone), ``host_power``
(Raspberry Pi under-voltage and throttling flags, where the board exposes them), ``host_memory``,
``host_disk`` (root and data filesystems, tag path), ``host_net`` (per interface) and ``gateway``
(resident memory, points/s into the store, store bytes written and their rate, from the store
component's ``health()``). A source that fails is logged once, reported in ``health()`` and
skipped; the others are still stored.
"""

from __future__ import annotations

import asyncio
import logging
import pathlib
import subprocess
import time
from typing import Any, Callable

from gateway.batch import Point
from gateway.readers.host import metrics
from gateway.readers.host.config import Config
from gateway.readers.precision import rounded
from gateway.runtime import Component, Context
from gateway.readers.store_writer import write_once

log = logging.getLogger("gateway.readers.host")


class HostReader(Component):
    name = "reader:host"

    def __init__(self, config: Config, context: Context) -> None:
        super().__init__()
        self.config = config
        self.proc = pathlib.Path(config.proc_path)
        self.sys = pathlib.Path(config.sys_path)
        self.paths = list(dict.fromkeys([*config.filesystems, context.data_dir]))
        self._context: Context | None = None
        #: source -> None when fine, or its last error
        self.sources: dict[str, str | None] = {}
        self.collections = 0
        self.store_errors = 0
        self.last_collection_at: float | None = None
        self._previous_store: tuple[float, int, int] | None = None
        self._precision_ns = config.effective_precision.ns

    async def start(self, context: Context) -> None:
        await super().start(context)
        self._context = context
        self.spawn(self._run(), "collect")

    def health(self) -> dict[str, Any]:
        out = super().health()
        out.update({"collections": self.collections, "last_collection_at": self.last_collection_at,
                    "store_errors": self.store_errors,
                    "sources": {k: {"ok": v is None, "last_error": v} for k, v in self.sources.items()},
                    "healthy": all(v is None for v in self.sources.values())})
        return out

    async def _run(self) -> None:
        while True:
            await self.collect_and_store()
            await asyncio.sleep(float(self.config.interval))

    async def collect_and_store(self) -> list[Point]:
        points, rss = await asyncio.to_thread(self.collect)
        points += self._gateway_points(self._now_ns(), rss)
        self.collections += 1
        self.last_collection_at = time.time()
        if points:
            await write_once(self._context.store, points, self)   # the policy: see store_writer
        return points

    def _now_ns(self) -> int:
        """The time of a collection's points, rounded to the precision (gateway/readers/precision.py)."""
        return rounded(self._context.clock.now_ns(), self._precision_ns)

    # -- sources --------------------------------------------------------------------------
    def _source(self, name: str, read: Callable[[], Any]) -> Any:
        try:
            value = read()
        except (OSError, ValueError, subprocess.SubprocessError) as e:
            if self.sources.get(name) is None:
                log.warning("%s: cannot read %s: %s", self.name, name, e)
            self.sources[name] = str(e)
            return None
        if self.sources.get(name) is not None:
            log.info("%s: %s readable again", self.name, name)
        self.sources[name] = None
        return value

    def collect(self) -> tuple[list[Point], int | None]:
        """Reads every source once (blocking file reads; runs on a worker thread).
        Returns the points and the gateway's resident memory."""
        now = self._now_ns()
        points = []
        system = {}
        load = self._source("loadavg", lambda: metrics.load_average(self.proc))
        if load:
            system.update(load)
        up = self._source("uptime", lambda: metrics.uptime_s(self.proc))
        if up is not None:
            system["uptime_s"] = up
        if system:
            points.append(Point("host_system", system, {}, now))
        zones = self._source("thermal", lambda: metrics.thermal_zones(self.sys))
        for zone, celsius in (zones or {}).items():
            points.append(Point("host_thermal", {"temperature_c": celsius}, {"zone": zone}, now))
        power = self._source("throttling", lambda: metrics.throttling(self.sys))
        if power:
            points.append(Point("host_power", power, {}, now))
        memory = self._source("meminfo", lambda: metrics.memory(self.proc))
        if memory:
            points.append(Point("host_memory", memory, {}, now))
        seen_devices = set()
        for path in self.paths:
            result = self._source(f"filesystem {path}", lambda p=path: metrics.filesystem(p))
            if result is None:
                continue
            device, fields = result
            if device in seen_devices:
                continue  # the data directory on the root filesystem: reported once
            seen_devices.add(device)
            points.append(Point("host_disk", fields, {"path": path}, now))
        nets = self._source("net/dev", lambda: metrics.network(self.proc, self.config.interfaces))
        for interface, fields in (nets or {}).items():
            points.append(Point("host_net", fields, {"interface": interface}, now))
        rss = self._source("self/status", lambda: metrics.own_rss_bytes(self.proc))
        return points, rss

    def _gateway_points(self, now_ns: int, rss: int | None) -> list[Point]:
        """The gateway's resident memory, and points/s into the store and store bytes written
        from the store's health() when there is a store."""
        fields: dict[str, Any] = {} if rss is None else {"rss_bytes": rss}
        store = self._context.components.get("store") if self._context else None
        health = getattr(store, "health", None)
        if health is None:
            return [Point("gateway", fields, {}, now_ns)] if fields else []
        try:
            buckets = health().get("buckets") or {}
            points_in = sum(int(b.get("points_written") or 0) for b in buckets.values())
            written = sum(int(b.get("bytes_written") or 0) for b in buckets.values())
        except Exception as e:
            self.sources["store health"] = str(e)
            return [Point("gateway", fields, {}, now_ns)] if fields else []
        self.sources["store health"] = None
        fields.update({"store_points_written": points_in, "store_bytes_written": written})
        now = time.monotonic()
        if self._previous_store is not None:
            then, prev_points, prev_bytes = self._previous_store
            elapsed = max(now - then, 1e-9)
            fields["points_in_per_s"] = max(0, points_in - prev_points) / elapsed
            fields["store_bytes_per_s"] = max(0, written - prev_bytes) / elapsed
        self._previous_store = (now, points_in, written)
        return [Point("gateway", fields, {}, now_ns)]

