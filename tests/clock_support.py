"""An injected clock source for the tests of the clock rule: monotonic and wall time that the
test sets, the kernel's synchronised flag, and the boot (imported by module name)."""

from __future__ import annotations

S = 10**9
#: A fake-hwclock time a Pi could boot with (2025-01-01T00:00:00Z) and the real time NTP
#: steps it to (2026-06-01T00:00:00Z).
BOOT_REALTIME = 1_735_689_600 * S
REAL_TIME = 1_780_272_000 * S


class SteppedClock:
    """A ClockSource the test drives: ``advance(seconds)`` moves both clocks, ``step(t)`` sets
    the wall clock as NTP does and marks it synchronised."""

    def __init__(self, monotonic_ns: int = 10 * S, realtime_ns: int = BOOT_REALTIME,
                 boot: str = "boot-a", synchronised: bool | None = False) -> None:
        self.mono = monotonic_ns
        self.real = realtime_ns
        self.boot = boot
        self.synced = synchronised

    def monotonic_ns(self) -> int:
        return self.mono

    def realtime_ns(self) -> int:
        return self.real

    def synchronised(self) -> bool | None:
        return self.synced

    def boot_id(self) -> str:
        return self.boot

    def advance(self, seconds: float) -> None:
        self.mono += int(seconds * S)
        self.real += int(seconds * S)

    def step(self, realtime_ns: int) -> None:
        self.real = realtime_ns
        self.synced = True
