"""The GPIO reader: digital inputs as state changes, and pulse counters with a rate.

Pins come from a gpiozero pin factory (lgpio on a Pi, MockFactory on the emulated rig and in
tests) and are used through gpiozero's pin interface, which lets the pull resistor and the
active level be chosen independently. Edge callbacks arrive on the factory's thread and are
handed to the event loop with their time.

Debounce is done here, not by the GPIO library (MockFactory does not bounce and the kernel's
debounce is not available on every chip): after any raw edge the pin must hold its level for
``debounce`` before the change is accepted; a burst that ends at the level it started from is
counted as a bounce and ignored. An accepted change is timestamped at the first edge of its
burst, so debounce adds no delay to the recorded time.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass
from typing import Any

from gateway import hardware
from gateway.batch import Point, UInt
from gateway.readers.gpio.config import Config, InputConfig
from gateway.readers.gpio.counters import CounterFile
from gateway.runtime import Component, Context
from gateway.readers.precision import rounded
from gateway.readers.store_writer import write_once

log = logging.getLogger("gateway.readers.gpio")

#: Edge points waiting for the writer; beyond this, new edges are dropped and counted.
MAX_PENDING_POINTS = 10000


@dataclass
class InputState:
    config: InputConfig
    pin: Any = None
    level: bool | None = None  # debounced electrical level
    raw_level: bool | None = None
    burst_started_ns: int | None = None
    #: The newest raw edge not yet settled: (its time, its level).
    pending: tuple[int, bool] | None = None
    timer: asyncio.TimerHandle | None = None
    changes: int = 0
    bounces: int = 0
    raw_edges: int = 0
    count: int = 0
    reported_count: int = 0
    error: str | None = None
    callback: Any = None

    @property
    def active(self) -> bool | None:
        if self.level is None:
            return None
        return self.level != self.config.active_low

    def snapshot(self) -> dict[str, Any]:
        out = {"pin": self.config.pin, "mode": self.config.mode, "healthy": self.error is None,
               "last_error": self.error, "active": self.active, "changes": self.changes,
               "bounces_ignored": self.bounces, "raw_edges": self.raw_edges}
        if self.config.mode == "counter":
            out["count"] = self.count
        return out


class GPIOReader(Component):
    name = "reader:gpio"

    def __init__(self, config: Config, context: Context) -> None:
        super().__init__()
        self.config = config
        self.hardware = getattr(getattr(context.config, "gateway", None), "hardware", "auto")
        self.source_tags = hardware.source_tags(self.hardware)
        self.inputs: dict[str, InputState] = {n.name: InputState(n) for n in config.inputs}
        self.counter_file = CounterFile(context.data_dir)
        self._queue: asyncio.Queue[Point] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._factory = None
        self._context: Context | None = None
        self._last_report = time.monotonic()
        self._precision_ns = config.effective_precision.ns
        self.dropped_points = 0
        self.store_errors = 0
        self.save_errors = 0
        self.factory_error: str | None = None

    # -- lifecycle --------------------------------------------------------------------
    async def start(self, context: Context) -> None:
        await super().start(context)
        self._context = context
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        saved = self.counter_file.load()
        for inp in self.inputs.values():
            if inp.config.mode == "counter":
                inp.count = inp.reported_count = saved.get(inp.config.name, 0)
        if not self.inputs:
            return
        try:
            self._factory = hardware.pin_factory(self.hardware)
        except OSError as e:
            self.factory_error = str(e)
            log.error("%s: %s", self.name, e)
            return
        for inp in self.inputs.values():
            self._open(inp)
        self._last_report = time.monotonic()
        self.spawn(self._write_points(), "write")
        self.spawn(self._report_periodically(), "report")

    def _open(self, inp: InputState) -> None:
        cfg = inp.config
        try:
            pin = self._factory.pin(cfg.pin)
            pin.function = "input"
            pin.pull = {"up": "up", "down": "down", "none": "floating"}[cfg.pull]
            pin.bounce = None  # debounced here
            pin.edges = "both"
            inp.level = inp.raw_level = bool(pin.state)
            inp.pin = pin
            # gpiozero keeps only a weak reference to the callback: the input holds the strong one.
            inp.callback = functools.partial(self._edge_from_thread, inp)
            pin.when_changed = inp.callback
        except Exception as e:  # gpiozero raises its own errors (invalid pin, fixed pull, busy)
            inp.error = f"pin {cfg.pin}: {e}"
            log.error("%s: input %s: %s", self.name, cfg.name, inp.error)

    async def stop(self) -> None:
        for inp in self.inputs.values():
            if inp.timer is not None:
                inp.timer.cancel()
                inp.timer = None
            if inp.pin is not None:
                try:
                    inp.pin.when_changed = None
                    inp.pin.close()
                except Exception as e:
                    log.warning("%s: closing pin %s: %s", self.name, inp.config.pin, e)
                inp.pin = None
                inp.callback = None
        await super().stop()
        if self._queue is not None and not self._queue.empty():
            await self._flush()
        await asyncio.to_thread(self._save_counts)

    def health(self) -> dict[str, Any]:
        out = super().health()
        out["inputs"] = {name: inp.snapshot() for name, inp in list(self.inputs.items())}
        if self.source_tags:
            out["hardware"] = hardware.EMULATED
        out["dropped_points"] = self.dropped_points
        out["store_errors"] = self.store_errors
        out["counter_save_errors"] = self.save_errors
        if self.factory_error:
            out["error"] = self.factory_error
        out["healthy"] = self.factory_error is None and all(i.error is None for i in self.inputs.values())
        return out

    # -- edges and debounce -------------------------------------------------------------
    def _edge_from_thread(self, inp: InputState, ticks, state) -> None:
        age = 0.0
        try:
            age = max(0.0, self._factory.ticks_diff(self._factory.ticks(), ticks))
        except Exception:
            pass  # a factory without usable ticks: the arrival time will do
        when_ns = self._context.clock.now_ns() - int(age * 1e9)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._raw_edge, inp, bool(state), when_ns)

    def _raw_edge(self, inp: InputState, level: bool, when_ns: int) -> None:
        """Debounce by the edges' own times, not by when the loop gets to them: a level that
        held for ``debounce`` between two edges was a settled state even when both edges reach
        the loop together (a loop busy for longer than a press would otherwise take the press
        for a bounce and lose it)."""
        if inp.pin is None:
            return
        inp.raw_edges += 1
        inp.raw_level = level
        debounce_ns = int(float(inp.config.debounce) * 1e9)
        if inp.pending is not None and when_ns - inp.pending[0] >= debounce_ns:
            self._accept(inp, inp.pending[1])
        if inp.burst_started_ns is None:
            inp.burst_started_ns = when_ns
        inp.pending = (when_ns, level)
        if inp.timer is not None:
            inp.timer.cancel()
            inp.timer = None
        if debounce_ns == 0:
            self._settle(inp)
        else:
            inp.timer = self._loop.call_later(float(inp.config.debounce), self._settle, inp)

    def _settle(self, inp: InputState) -> None:
        """The newest edge's level has held for the debounce time: accept it."""
        inp.timer = None
        if inp.pin is None or inp.pending is None:
            return
        level, inp.pending = inp.pending[1], None
        self._accept(inp, level)

    def _accept(self, inp: InputState, level: bool) -> None:
        """A settled level: a change when it differs from the last one (a point at the time
        its burst of edges began, or a count), else a burst that came back (a bounce)."""
        started, inp.burst_started_ns = inp.burst_started_ns, None
        if level == inp.level:
            inp.bounces += 1
            return
        inp.level = level
        inp.changes += 1
        active = inp.active
        if inp.config.mode == "state":
            self._enqueue(self._point(inp, {"state": int(active)}, started))
        elif inp.config.count_on == "both" or (inp.config.count_on == "activate") == active:
            inp.count += 1

    # -- points -------------------------------------------------------------------------
    def _point(self, inp: InputState, fields: dict, time_ns: int) -> Point:
        tags = {**inp.config.tags, "input": inp.config.name, "pin": str(inp.config.pin),
                **self.source_tags}
        return Point(self.config.measurement, fields, tags, rounded(time_ns, self._precision_ns))

    def _enqueue(self, point: Point) -> None:
        if self._queue.qsize() >= MAX_PENDING_POINTS:
            self.dropped_points += 1
            return
        self._queue.put_nowait(point)

    async def _write_points(self) -> None:
        while True:
            await self._flush(await self._queue.get())

    async def _flush(self, first: Point | None = None) -> None:
        """Writes ``first`` and every point queued behind it as one batch."""
        points = [first] if first is not None else []
        while not self._queue.empty():
            points.append(self._queue.get_nowait())
        if not points:
            return
        await write_once(self._context.store, points, self)   # the policy: see store_writer

    def report(self) -> None:
        """Queues every input's current state, or count and rate since the last report."""
        now_ns = self._context.clock.now_ns()
        now = time.monotonic()
        elapsed = max(now - self._last_report, 1e-9)
        self._last_report = now
        for inp in self.inputs.values():
            if inp.pin is None or inp.level is None:
                continue
            if inp.config.mode == "state":
                self._enqueue(self._point(inp, {"state": int(inp.active)}, now_ns))
                continue
            delta = inp.count - inp.reported_count
            inp.reported_count = inp.count
            fields: dict[str, Any] = {"count": UInt(inp.count), "rate_per_s": delta / elapsed}
            if inp.config.scale is not None:
                fields["total"] = inp.count * inp.config.scale
                fields["rate"] = delta / elapsed * inp.config.scale
            self._enqueue(self._point(inp, fields, now_ns))

    async def _report_periodically(self) -> None:
        interval = float(self.config.report_interval)
        self.report()  # the state at start
        while True:
            await asyncio.sleep(interval)
            self.report()
            await asyncio.to_thread(self._save_counts)

    def _save_counts(self) -> None:
        counts = {i.config.name: i.count for i in self.inputs.values() if i.config.mode == "counter"}
        if not counts:
            return
        try:
            self.counter_file.save(counts)
        except OSError as e:
            self.save_errors += 1
            log.error("%s: cannot save pulse counts to %s: %s", self.name, self.counter_file.path, e)
