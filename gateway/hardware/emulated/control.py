"""Stimulus for the emulated rig from outside the process: the hardware-in-the-loop rigs' hands.

A HIL scenario runs the gateway as a separate process (a power cut is a SIGKILL), so it cannot
press a button or unplug a sensor by calling into the rig. When ``GATEWAY_RIG_CONTROL`` names a
socket path and the hardware is emulated, the gateway serves this small protocol there (mode
0600): one JSON object per line in, one JSON answer per line out.

    {"op": "hello"}                                         -> {"ok": true, "rig": "emulated", ...}
    {"op": "press", "pin": 17, "count": 5, "hold_ms": 60, "gap_ms": 60, "active_low": true}
    {"op": "i2c", "bus": 1, "address": 118, "fault": "vanish" | "reappear" | "corrupt_crc"
                  | "nack" | "clear", "count": 3}
    {"op": "clock", "step_to_ns": 1764000000000000000}      -> {"ok": true, "realtime_ns": ...}
    {"op": "clock", "advance_ns": 5000000000}               -> {"ok": true, "realtime_ns": ...}

``press`` drives the mock pin to its active level for ``hold_ms`` and back for ``gap_ms``,
``count`` times, and answers when the last release is done. ``i2c`` applies one of the emulated
part's fault injections (``count`` for ``corrupt_crc`` and ``nack``; absent means until
``clear``). ``clock`` steps the emulated wall clock (``GATEWAY_EMULATED_CLOCK``, gateway/clock.py)
to a Unix time in ns and marks it synchronised, as an NTP client's first step does; with
``advance_ns`` it lets that much time pass at once instead (both clocks move on, and the timers
that wait on the clock, a replication stream's flush interval and backoff, see it pass: a HIL
scenario plays a long outage in seconds). Errors answer ``{"ok": false, "error": "..."}`` and
never stop the gateway.

It is never served on real hardware: the component refuses to start there, so a production
image cannot be driven by it even when the variable is set by mistake.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from typing import Any

from gateway import hardware
from gateway.clock import EMULATED_CLOCK_ENV, HELD_BASE_NS, EmulatedClock, WallClock
from gateway.runtime import Component, Context

log = logging.getLogger("gateway.hardware.rig_control")

RIG_CONTROL_ENV = "GATEWAY_RIG_CONTROL"
#: A request line longer than this is refused (the protocol's requests are tens of bytes).
MAX_REQUEST_BYTES = 4096
#: Bounds on one press request, so a typo cannot keep a pin busy for hours.
MAX_PRESSES = 100_000
MAX_PHASE_MS = 10_000
#: Bound on one advance of the emulated clock (a day).
MAX_ADVANCE_NS = 86_400 * 10**9

_FAULTS = ("vanish", "reappear", "corrupt_crc", "nack", "clear")


class RigControlError(ValueError):
    """A request the rig cannot carry out (bad field, unknown part); answered, never raised out."""


def press(pin, count: int, hold_s: float, gap_s: float, active_low: bool,
          sleep=time.sleep) -> int:
    """Drives a gpiozero mock pin through ``count`` presses; returns the presses made."""
    active, idle = (pin.drive_low, pin.drive_high) if active_low else (pin.drive_high, pin.drive_low)
    for _ in range(count):
        active()
        sleep(hold_s)
        idle()
        sleep(gap_s)
    return count


def _int_field(request: dict, name: str, lo: int, hi: int, default: int | None = None) -> int:
    value = request.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RigControlError(f"{name} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise RigControlError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


class RigControl(Component):
    """Serves the stimulus socket of the emulated rig (see the module docstring)."""

    name = "rig-control"

    def __init__(self, path: str, setting: str = "auto", clock: WallClock | None = None) -> None:
        super().__init__()
        self.path = path
        self.setting = setting
        self.clock = clock
        self.requests = 0
        self.errors = 0
        self._server: asyncio.base_events.Server | None = None

    async def start(self, context: Context) -> None:
        await super().start(context)
        if hardware.resolve(self.setting) != "emulated":
            raise RigControlError(f"{RIG_CONTROL_ENV} is set but the hardware is real: "
                                  "the rig control socket is only served on the emulated rig")
        if os.path.exists(self.path):
            os.unlink(self.path)
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=self.path,
                                                           limit=MAX_REQUEST_BYTES)
        finally:
            os.umask(old_umask)
        log.info("emulated hardware: rig control on %s", self.path)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        await super().stop()

    def health(self) -> dict[str, Any]:
        return {**super().health(), "path": self.path, "requests": self.requests,
                "errors": self.errors}

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Each connection's task is the component's, so stop() cancels and awaits it.
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            while True:
                try:
                    line = await reader.readline()
                except (asyncio.LimitOverrunError, ValueError):
                    answer = {"ok": False, "error": f"request over {MAX_REQUEST_BYTES} bytes"}
                    self.errors += 1
                    writer.write(json.dumps(answer).encode() + b"\n")
                    break
                if not line:
                    break
                answer = await self._answer(line)
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    async def _answer(self, line: bytes) -> dict[str, Any]:
        self.requests += 1
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise RigControlError("a request is a JSON object")
            return {"ok": True, **await self._carry_out(request)}
        except (RigControlError, json.JSONDecodeError, UnicodeDecodeError) as e:
            self.errors += 1
            return {"ok": False, "error": str(e)}

    async def _carry_out(self, request: dict) -> dict[str, Any]:
        op = request.get("op")
        rig = hardware.emulated_rig()
        if op == "hello":
            return {"rig": "emulated", "pid": os.getpid(),
                    "buses": {n: bus.addresses for n, bus in rig.buses.items()}}
        if op == "press":
            pin_number = _int_field(request, "pin", 0, 53)
            count = _int_field(request, "count", 1, MAX_PRESSES, 1)
            hold = _int_field(request, "hold_ms", 0, MAX_PHASE_MS, 60) / 1000
            gap = _int_field(request, "gap_ms", 0, MAX_PHASE_MS, 60) / 1000
            active_low = bool(request.get("active_low", True))
            pin = rig.pin_factory.pin(pin_number)
            made = await asyncio.to_thread(press, pin, count, hold, gap, active_low)
            return {"presses": made}
        if op == "i2c":
            bus_number = _int_field(request, "bus", 0, 255)
            address = _int_field(request, "address", 0x03, 0x77)
            fault = request.get("fault")
            if fault not in _FAULTS:
                raise RigControlError(f"fault must be one of {', '.join(_FAULTS)}, got {fault!r}")
            if bus_number not in rig.buses or address not in rig.buses[bus_number].addresses:
                raise RigControlError(f"no emulated part at bus {bus_number} address {address:#04x}")
            device = rig.buses[bus_number].device(address)
            count = request.get("count")
            if count is not None:
                count = _int_field(request, "count", 1, MAX_PRESSES)
            if fault == "corrupt_crc":
                device.corrupt_crc(count)
            elif fault == "nack":
                device.nack(count)
            elif fault == "clear":
                device.clear_faults()
            else:
                getattr(device, fault)()
            return {"part": repr(device)}
        if op == "clock":
            source = self.clock.source if self.clock is not None else None
            if not isinstance(source, EmulatedClock):
                raise RigControlError(f"the clock is the system's: start the gateway with "
                                      f"{EMULATED_CLOCK_ENV} to step it")
            if "advance_ns" in request:
                source.advance(_int_field(request, "advance_ns", 0, MAX_ADVANCE_NS))
            else:
                source.step(_int_field(request, "step_to_ns", 0, HELD_BASE_NS - 1))
            return {"realtime_ns": source.realtime_ns()}
        raise RigControlError(f"unknown op {op!r} (hello, press, i2c, clock)")


def path_from_environment(environ=os.environ) -> str | None:
    """The socket path ``GATEWAY_RIG_CONTROL`` names, or None when the rig is not to be driven."""
    return environ.get(RIG_CONTROL_ENV, "").strip() or None
