"""The wall clock, and whether it can be trusted yet.

A Raspberry Pi has no real-time clock: it boots with the time fake-hwclock saved last (or the
image's build time on a first boot), and NTP steps it forward once the network is up, minutes
or days later. A time the gateway gives a point before that step is wrong by the whole gap.

:class:`WallClock` is the one place the gateway asks "what time is it" for a point it times
itself (a sensor reading, an MQTT message without a time of its own, an HTTP line without a
timestamp). Once the clock is synchronised the answer is the real time. Before, when the
rule is on (``[clock] require_sync``), the answer is a *held time*: ``HELD_BASE_NS`` plus the
monotonic clock, which no real point has (year 2096 on). The store keeps points with held times
out of its buckets, in the hold (:mod:`gateway.store.hold`), and re-times them once the clock
is synchronised: ``realtime - monotonic`` at that moment plus the point's monotonic time, which
is ``sync_realtime - (sync_monotonic - point_monotonic)``.

"Synchronised" is the kernel's word for it (adjtimex(2) does not answer TIME_ERROR: NTP
clients, systemd-timesyncd and chrony, clear the kernel's unsynchronised flag once they have set
the clock). It latches: a clock that was synchronised once keeps running from a good time, so
a later loss of NTP does not hold points again.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import logging
import os
import threading
import time
from typing import Protocol

log = logging.getLogger("gateway.clock")

#: Held times are this plus CLOCK_MONOTONIC (ns); 4e18 ns is 2096-10-02, later than any time a
#: sensor sends today, and leaves 160 years of uptime below INT64_MAX.
HELD_BASE_NS = 4_000_000_000 * 10**9
#: How often the kernel is asked whether the clock is synchronised (a syscall through ctypes;
#: the answer is cached in between).
SYNC_POLL_S = 0.5
#: An emulated clock starts at this Unix time (seconds) when the environment names it; only
#: with emulated hardware (a HIL rig's fake clock, hil/README.md).
EMULATED_CLOCK_ENV = "GATEWAY_EMULATED_CLOCK"
#: How often a wait on an emulated clock looks whether the rig advanced the clock past its end.
ADVANCE_POLL_S = 0.05

_TIME_ERROR = 5


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL:
    # Loaded once: find_library runs ldconfig in a subprocess, and the state is asked twice a
    # second until the clock is synchronised, and by every status page.
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def clock_synchronised() -> tuple[bool | None, str | None]:
    """Whether the kernel considers the clock synchronised (adjtimex state), None if that is
    unknown, and then why."""
    try:
        libc = _libc()
        timex = ctypes.create_string_buffer(512)  # struct timex; modes = 0 reads only
        state = libc.adjtimex(timex)
    except (OSError, AttributeError) as e:
        return None, f"adjtimex is not available: {e}"
    if state < 0:
        err = ctypes.get_errno()
        # A service sandbox (systemd's ProtectClock=, a seccomp filter) refuses the call
        # with EPERM: the rule then cannot work, which must not pass unseen.
        return None, (f"adjtimex was refused ({os.strerror(err)}): the kernel's clock "
                      f"synchronisation state cannot be read (a sandbox's system-call filter?)")
    return state != _TIME_ERROR, None


class ClockSource(Protocol):
    """Where the time comes from: the system's clocks, or an emulated one (tests, HIL rigs)."""

    def monotonic_ns(self) -> int: ...
    def realtime_ns(self) -> int: ...
    def synchronised(self) -> bool | None: ...
    def boot_id(self) -> str: ...
    def monotonic(self) -> float: ...
    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """CLOCK_MONOTONIC, CLOCK_REALTIME and the kernel's synchronisation state."""

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()

    def realtime_ns(self) -> int:
        return time.time_ns()

    #: Why the last synchronised() answered None (unknown), else None.
    unknown_reason: str | None = None

    def synchronised(self) -> bool | None:
        state, self.unknown_reason = clock_synchronised()
        return state

    def monotonic(self) -> float:
        """Seconds, for timers (a replication stream's flush interval and backoff)."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def boot_id(self) -> str:
        """The kernel's id of this boot: monotonic times of another boot are not comparable."""
        try:
            with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
                return f.read().strip()
        except OSError:
            return "unknown"


class EmulatedClock:
    """A wall clock that starts at a given time and is not synchronised until it is stepped, as
    a Pi's clock after a boot; its monotonic clock and boot are the system's, plus whatever time
    the rig let pass at once (:meth:`advance`). Thread safe (the rig-control socket steps it
    from its own task, readers read it)."""

    def __init__(self, start_ns: int, system: SystemClock | None = None) -> None:
        self._system = system or SystemClock()
        self._lock = threading.Lock()
        #: ns the rig advanced the clock by: both clocks run this far ahead of the system's
        self._advanced = 0
        self._offset = start_ns - self._system.monotonic_ns()
        self._synchronised = False

    def monotonic_ns(self) -> int:
        with self._lock:
            return self._system.monotonic_ns() + self._advanced

    def realtime_ns(self) -> int:
        with self._lock:
            return self._offset + self._system.monotonic_ns() + self._advanced

    def monotonic(self) -> float:
        return self.monotonic_ns() / 1e9

    async def sleep(self, seconds: float) -> None:
        """Waits until ``seconds`` of this clock have passed: as long in real time, or less when
        the rig advances the clock meanwhile (a HIL rig plays a ten-minute outage in seconds,
        and the timers that wait on this clock see the ten minutes pass)."""
        deadline = self.monotonic_ns() + int(seconds * 1e9)
        await asyncio.sleep(0)
        while (left := deadline - self.monotonic_ns()) > 0:
            await asyncio.sleep(min(left / 1e9, ADVANCE_POLL_S))

    def advance(self, ns: int) -> None:
        """Lets ``ns`` of time pass at once, on the monotonic and the wall clock alike (the
        synchronisation state stays). Within one run of the gateway: a restart starts again
        from the rig's boot clock, as every power on does."""
        if ns < 0:
            raise ValueError("time does not go back: a step sets the wall clock, an advance only moves on")
        with self._lock:
            self._advanced += ns

    def synchronised(self) -> bool:
        with self._lock:
            return self._synchronised

    def boot_id(self) -> str:
        return self._system.boot_id()

    def step(self, realtime_ns: int, synchronised: bool = True) -> None:
        """Sets the wall clock, as an NTP client's step does (and marks it synchronised)."""
        with self._lock:
            self._offset = realtime_ns - self._system.monotonic_ns() - self._advanced
            self._synchronised = synchronised


def rule_applies(require_sync: bool | str, raspberry_pi: bool) -> bool:
    """Whether points are held until the clock is synchronised: ``auto`` means on a Raspberry
    Pi (no real-time clock; the device tree says so) and with an emulated clock, not elsewhere:
    a server's, a container's or a virtual machine's clock comes from a real-time clock or its
    host, and the kernel may report it unsynchronised for ever when no NTP client runs."""
    if require_sync == "auto":
        return raspberry_pi or bool(os.environ.get(EMULATED_CLOCK_ENV))
    return bool(require_sync)


class WallClock:
    """The time the gateway gives the points it times itself (see the module's doc)."""

    def __init__(self, source: ClockSource | None = None, require_sync: bool = True) -> None:
        self.source = source or SystemClock()
        self.require_sync = require_sync
        self._trusted = not require_sync
        self._checked_at: int | None = None
        self._lock = threading.Lock()
        #: CLOCK_MONOTONIC (ns) when the clock was first seen synchronised, or None.
        self.synchronised_at_mono: int | None = None

    def trusted(self) -> bool:
        """True once the clock is synchronised (or the rule is off); latches."""
        if self._trusted:
            return True
        now = self.source.monotonic_ns()
        with self._lock:
            if self._trusted:
                return True
            if self._checked_at is not None and now - self._checked_at < SYNC_POLL_S * 1e9:
                return False
            self._checked_at = now
            state = self.source.synchronised()
            if state is None:
                # The kernel cannot say (not Linux, or the call is refused): nothing will ever
                # report a sync, and holding for ever would keep every point from the store.
                # A refusal is an error (the status API shows it): on a Pi the points are then
                # stored at whatever time the clock has before NTP sets it.
                reason = getattr(self.source, "unknown_reason", None)
                log.log(logging.ERROR if reason else logging.WARNING,
                        "%s; taking the clock as it is", reason or
                        "the kernel does not report whether the clock is synchronised")
            if state is None or state:
                self._trusted = True
                self.synchronised_at_mono = now
                if state:
                    log.info("the clock is synchronised")
        return self._trusted

    def now_ns(self) -> int:
        """The time for a point taken now: real once trusted, else a held time."""
        if self.trusted():
            return self.source.realtime_ns()
        return HELD_BASE_NS + self.source.monotonic_ns()

    def is_held(self, time_ns: int) -> bool:
        """Whether ``time_ns`` is a held time of this boot (not a device's time far ahead)."""
        return HELD_BASE_NS <= time_ns <= HELD_BASE_NS + self.source.monotonic_ns()

    def offset_ns(self) -> int:
        """realtime - monotonic now: what turns a held time of this boot into a real one."""
        return self.source.realtime_ns() - self.source.monotonic_ns()

    def real_time_of(self, time_ns: int) -> int:
        """A held time of this boot as a real time (the clock must be trusted)."""
        return time_ns - HELD_BASE_NS + self.offset_ns()

    def state(self) -> dict:
        return {"synchronised": self.source.synchronised(), "trusted": self.trusted(),
                "require_sync": self.require_sync}


def from_config(config) -> WallClock:
    """The gateway's wall clock for its configuration (``[clock]``, ``[gateway] hardware``);
    an emulated clock when the environment names its start and the hardware is emulated."""
    from gateway import hardware

    resolved = hardware.resolve(config.gateway.hardware)
    source: ClockSource = SystemClock()
    start = os.environ.get(EMULATED_CLOCK_ENV)
    if start:
        if resolved != "emulated":
            raise ValueError(f"{EMULATED_CLOCK_ENV} is set but the hardware is real: an emulated "
                             f"clock is for HIL rigs only")
        try:
            source = EmulatedClock(int(float(start) * 1e9))
        except ValueError:
            raise ValueError(f"{EMULATED_CLOCK_ENV}={start!r} is not a Unix time in seconds") from None
    return WallClock(source, rule_applies(config.clock.require_sync, hardware.is_raspberry_pi()))
