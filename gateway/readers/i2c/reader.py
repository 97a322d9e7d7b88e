"""The I2C reader: polls each configured part on its own schedule and writes its points.

Each sensor has its own task. A read's bus I/O runs on a worker thread under the bus's lock (one
``SMBus`` handle is not safe to share between threads mid-transaction); the part's conversion
time is waited on the event loop, so other sensors on the same bus are read meanwhile.

A failed read (NACK, bad CRC, wrong chip id, stuck value) marks the sensor unhealthy with the
error, and it is tried again after a back-off that doubles from ``retry_initial`` up to
``retry_max``; the part is set up afresh first, so it recovers by itself when it comes back.
A value outside the part's physical range is dropped and counted, and the rest of the reading
is stored.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

from gateway import hardware
from gateway.batch import Point
from gateway.errors import DeviceError
from gateway.readers.i2c.config import PARTS, Config, SensorConfig
from gateway.readers.i2c.driver import Driver, Reading
from gateway.readers.precision import rounded
from gateway.runtime import Component, Context
from gateway.readers.store_writer import write_once

log = logging.getLogger("gateway.readers.i2c")

#: How often an out-of-range value of the same field is logged again (every Nth).
LOG_EVERY = 100
#: Points waiting for the store; beyond this (a store stalled for a long time) new points are
#: dropped and counted rather than held without bound.
MAX_PENDING_POINTS = 10000


def build_driver(sensor: SensorConfig, bus) -> Driver:
    module_name, class_name = PARTS[sensor.part][:2]
    cls = getattr(importlib.import_module(module_name), class_name)
    if sensor.part == "bme280":
        return cls(bus, sensor.address, oversampling=sensor.oversampling,
                   compensation=sensor.compensation)
    if sensor.part in ("sht3x", "sht4x"):
        return cls(bus, sensor.address, repeatability=sensor.repeatability)
    from gateway.readers.i2c.ads1115 import Channel
    channels = [Channel(c.input, c.name or f"ain{c.input}", c.full_scale_v, c.data_rate,
                        c.scale if c.scale is not None else 1.0, c.offset, c.scale is not None)
                for c in sensor.channels]
    return cls(bus, sensor.address, channels=channels)


@dataclass
class SensorState:
    config: SensorConfig
    driver: Driver
    stuck_after: int
    precision_ns: int = 1   # readings' times are stored rounded to this (gateway/readers/precision.py)
    ready: bool = False
    healthy: bool = False
    last_error: str | None = None
    last_error_at: float | None = None
    last_reading_at: float | None = None
    reads: int = 0
    failed_reads: int = 0
    rejected_values: int = 0
    stuck_reads: int = 0
    consecutive_failures: int = 0
    next_attempt_at: float | None = None
    last_raw: tuple | None = None
    same_raw: int = 0
    rejected_by_field: dict[str, int] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Any]:
        return {"part": self.config.part, "address": f"0x{self.config.address:02x}",
                "healthy": self.healthy, "last_error": self.last_error,
                "last_error_at": self.last_error_at, "last_reading_at": self.last_reading_at,
                "reads": self.reads, "failed_reads": self.failed_reads,
                "rejected_values": self.rejected_values, "stuck_reads": self.stuck_reads,
                "consecutive_failures": self.consecutive_failures,
                "next_attempt_at": self.next_attempt_at, "device": self.driver.info()}


class I2CReader(Component):
    def __init__(self, config: Config, context: Context, *, rng: random.Random | None = None) -> None:
        super().__init__()
        self.config = config
        self.name = f"reader:i2c:{config.bus}"
        self.hardware = getattr(getattr(context.config, "gateway", None), "hardware", "auto")
        self.source_tags = hardware.source_tags(self.hardware)
        self._rng = rng or random.Random()
        self._bus = None
        self._bus_lock = asyncio.Lock()
        self._context: Context | None = None
        self.sensors: dict[str, SensorState] = {}
        self.open_error: str | None = None
        self._pending: asyncio.Queue | None = None
        self.dropped_points = 0
        self.store_errors = 0

    async def start(self, context: Context) -> None:
        await super().start(context)
        self._context = context
        sensors = self.config.sensors
        if self.config.emulated_rig_only and hardware.resolve(self.hardware) != "emulated":
            sensors = []
        if not sensors:
            log.info("%s: no sensors to poll", self.name)
            return
        self._pending = asyncio.Queue()
        self.spawn(self._write_points(), "write")
        try:
            self._bus = await asyncio.to_thread(hardware.open_i2c_bus, self.config.bus, self.hardware)
        except OSError as e:  # HardwareUnavailable is an OSError too
            self._bus_failed(e)
            self.spawn(self._open_later(sensors), "open")
            return
        self._start_polling(sensors)

    def _bus_failed(self, e: OSError) -> None:
        if self.open_error is None:
            log.error("%s: %s; trying again", self.name, e)
        self.open_error = str(e)

    async def _open_later(self, sensors: list[SensorConfig]) -> None:
        """Keeps trying to open the bus (the i2c-dev module may load late), with back-off."""
        failures = 1
        while True:
            await asyncio.sleep(self._jittered(self.retry_delay(failures)))
            try:
                self._bus = await asyncio.to_thread(hardware.open_i2c_bus, self.config.bus, self.hardware)
            except OSError as e:
                failures += 1
                self._bus_failed(e)
                continue
            log.info("%s: bus opened", self.name)
            self.open_error = None
            self._start_polling(sensors)
            return

    def _start_polling(self, sensors: list[SensorConfig]) -> None:
        for sensor in sensors:
            state = SensorState(sensor, build_driver(sensor, self._bus), 0,
                                self.config.precision_of(sensor).ns)
            state.stuck_after = (sensor.stuck_after if sensor.stuck_after is not None
                                 else state.driver.stuck_after_default)
            self.sensors[sensor.name] = state
            self.spawn(self._poll(state), f"poll:{sensor.name}")

    async def stop(self) -> None:
        """Stops polling, stores what is still queued, closes the bus."""
        await super().stop()
        if self._pending is not None and not self._pending.empty():
            await self._store(self._drain([]))
        if self._bus is not None:
            bus, self._bus = self._bus, None
            await asyncio.to_thread(bus.close)

    def health(self) -> dict[str, Any]:
        out = super().health()
        out["bus"] = self.config.bus
        if self.source_tags:
            out["hardware"] = hardware.EMULATED
        out["dropped_points"] = self.dropped_points
        out["store_errors"] = self.store_errors
        if self.open_error:
            out["error"] = self.open_error
        out["sensors"] = {name: s.snapshot() for name, s in list(self.sensors.items())}
        out["healthy"] = self.open_error is None and all(s.healthy for s in self.sensors.values())
        return out

    # -- polling ----------------------------------------------------------------------
    def _jittered(self, seconds: float) -> float:
        j = self.config.jitter
        return max(0.0, seconds * (1.0 + self._rng.uniform(-j, j)))

    def retry_delay(self, failures: int) -> float:
        """Seconds before the next try after ``failures`` failed reads in a row (before jitter)."""
        exponent = min(max(failures - 1, 0), 32)
        return min(float(self.config.retry_initial) * 2 ** exponent, float(self.config.retry_max))

    async def _poll(self, state: SensorState) -> None:
        interval = float(state.config.interval)
        # Spread first reads so parts configured alike do not all fire together.
        await asyncio.sleep(self._rng.uniform(0, interval * self.config.jitter))
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            ok = await self.poll_once(state)
            if ok:
                due = max(due + self._jittered(interval), loop.time())
            else:
                due = loop.time() + self._jittered(self.retry_delay(state.consecutive_failures))
            state.next_attempt_at = time.time() + (due - loop.time())
            await asyncio.sleep(max(0.0, due - loop.time()))

    async def poll_once(self, state: SensorState) -> bool:
        """One attempt: set up if needed, measure, check, store. True when the part answered well."""
        try:
            if not state.ready:
                await self._run(state.driver.setup())
                state.ready = True
            reading: Reading = await self._run(state.driver.measure())
            self._check_stuck(state, reading)
        except (OSError, DeviceError) as e:
            self._failed(state, _describe(e))
            return False
        except Exception as e:  # a driver bug must not end the poll loop
            log.exception("%s: %s: unexpected error", self.name, state.config.name)
            self._failed(state, f"unexpected error: {e!r}")
            return False
        now_ns = self._context.clock.now_ns()   # a held time before the clock is synchronised
        state.reads += 1
        state.consecutive_failures = 0
        state.last_reading_at = time.time()
        if not state.healthy:
            log.info("%s: %s is healthy%s", self.name, state.config.name,
                     f" again (was: {state.last_error})" if state.last_error else "")
        state.healthy = True
        for point in self._points(state, reading, rounded(now_ns, state.precision_ns)):
            if self._pending.qsize() >= MAX_PENDING_POINTS:
                self.dropped_points += 1
            else:
                self._pending.put_nowait(point)
        return True

    async def _write_points(self) -> None:
        """Writes queued points in batches; polling never waits for the store's WAL sync."""
        while True:
            await self._store(self._drain([await self._pending.get()]))

    def _drain(self, points: list) -> list:
        while not self._pending.empty():
            points.append(self._pending.get_nowait())
        return points

    async def _store(self, points: list) -> None:
        await write_once(self._context.store, points, self)   # the policy: see store_writer

    async def _run(self, steps):
        """Runs a driver generator: its bus I/O on a worker thread, its waits on the loop."""
        value = None
        while True:
            async with self._bus_lock:
                done, value = await asyncio.to_thread(_advance, steps, value)
            if done:
                return value
            await asyncio.sleep(value)
            value = None

    def _failed(self, state: SensorState, message: str) -> None:
        state.failed_reads += 1
        state.consecutive_failures += 1
        state.ready = False
        state.last_error = message
        state.last_error_at = time.time()
        if state.healthy or state.consecutive_failures == 1:
            log.warning("%s: %s unhealthy: %s", self.name, state.config.name, message)
        state.healthy = False

    def _check_stuck(self, state: SensorState, reading: Reading) -> None:
        if reading.raw == state.last_raw:
            state.same_raw += 1
        else:
            state.same_raw, state.last_raw = 0, reading.raw
        if state.stuck_after and state.same_raw >= state.stuck_after:
            state.stuck_reads += 1
            raise DeviceError(f"raw value stuck at {reading.raw} for {state.same_raw + 1} reads")

    def _points(self, state: SensorState, reading: Reading, time_ns: int) -> list[Point]:
        cfg = state.config
        base_tags = {**cfg.tags, "sensor": cfg.name, "part": cfg.part,
                     "bus": str(self.config.bus), "address": f"0x{cfg.address:02x}",
                     **self.source_tags}
        points = []
        for row in reading.rows:
            fields = {}
            for key, value in row.fields.items():
                lo, hi = row.ranges.get(key, (float("-inf"), float("inf")))
                if lo <= value <= hi:
                    fields[key] = value
                    continue
                state.rejected_values += 1
                n = state.rejected_by_field[key] = state.rejected_by_field.get(key, 0) + 1
                if n % LOG_EVERY == 1:
                    log.warning("%s: %s: %s=%r outside the part's range %s..%s; dropped (%d so far)",
                                self.name, cfg.name, key, value, lo, hi, n)
            if fields:
                points.append(Point(cfg.measurement, fields, {**base_tags, **row.tags}, time_ns))
        return points


def _advance(steps, value):
    """Runs a generator to its next wait (done=False, seconds) or its end (done=True, result)."""
    try:
        return False, steps.send(value)
    except StopIteration as finished:
        return True, finished.value


def _describe(e: Exception) -> str:
    if isinstance(e, DeviceError):
        return str(e)
    return f"I/O error: {e}"
