"""The clock rule: held times before the clock is synchronised, real ones after, and the
re-timing of a held time as sync_realtime - (sync_monotonic - point_monotonic)."""

from __future__ import annotations

import asyncio

import pytest

from gateway import clock as clock_module
from gateway.clock import HELD_BASE_NS, EmulatedClock, WallClock, rule_applies

from clock_support import BOOT_REALTIME, REAL_TIME, S, SteppedClock


def test_points_get_held_times_until_the_clock_is_synchronised():
    source = SteppedClock()
    clock = WallClock(source, require_sync=True)
    taken = clock.now_ns()
    assert taken == HELD_BASE_NS + source.mono
    assert clock.is_held(taken)
    assert not clock.trusted()
    source.advance(100)
    source.step(REAL_TIME)
    source.advance(clock_module.SYNC_POLL_S)  # the kernel is asked at most this often
    assert clock.trusted()
    assert clock.now_ns() == source.real
    # sync_realtime - (sync_monotonic - point_monotonic)
    assert clock.real_time_of(taken) == source.real - (source.mono - (taken - HELD_BASE_NS))
    assert clock.real_time_of(taken) == REAL_TIME - 100 * S   # taken 100 s before the step


def test_trust_latches_when_the_kernel_later_reports_the_clock_unsynchronised():
    source = SteppedClock(synchronised=True)
    clock = WallClock(source, require_sync=True)
    assert clock.trusted()
    source.synced = False
    source.advance(10)
    assert clock.trusted()
    assert clock.now_ns() == source.real


def test_the_kernel_state_is_polled_not_asked_for_every_point():
    source = SteppedClock()
    clock = WallClock(source, require_sync=True)
    assert not clock.trusted()
    source.synced = True
    assert not clock.trusted()          # the cached answer, within the poll interval
    source.advance(clock_module.SYNC_POLL_S)
    assert clock.trusted()


def test_without_the_rule_the_clock_is_taken_as_it_is():
    source = SteppedClock(realtime_ns=BOOT_REALTIME)
    clock = WallClock(source, require_sync=False)
    assert clock.trusted()
    assert clock.now_ns() == BOOT_REALTIME


def test_a_kernel_that_cannot_say_does_not_hold_for_ever():
    clock = WallClock(SteppedClock(synchronised=None), require_sync=True)
    assert clock.trusted()


def test_a_device_time_far_ahead_is_not_taken_for_a_held_one():
    source = SteppedClock(monotonic_ns=3600 * S)
    clock = WallClock(source, require_sync=True)
    assert clock.is_held(HELD_BASE_NS + 3600 * S)
    assert not clock.is_held(HELD_BASE_NS + 3601 * S)   # later than this boot's clock
    assert not clock.is_held(REAL_TIME)


@pytest.mark.parametrize("setting, raspberry_pi, env, applies", [
    ("auto", True, None, True), ("auto", False, None, False),
    ("auto", False, "1735689600", True), (True, False, None, True),
    (False, True, None, False)])
def test_auto_holds_on_a_pi_and_with_an_emulated_clock(monkeypatch, setting, raspberry_pi, env, applies):
    if env is None:
        monkeypatch.delenv(clock_module.EMULATED_CLOCK_ENV, raising=False)
    else:
        monkeypatch.setenv(clock_module.EMULATED_CLOCK_ENV, env)
    assert rule_applies(setting, raspberry_pi) is applies


def test_the_emulated_clock_starts_in_the_past_and_is_stepped():
    emulated = EmulatedClock(BOOT_REALTIME)
    assert not emulated.synchronised()
    assert BOOT_REALTIME <= emulated.realtime_ns() < BOOT_REALTIME + 60 * S
    emulated.step(REAL_TIME)
    assert emulated.synchronised()
    assert REAL_TIME <= emulated.realtime_ns() < REAL_TIME + 60 * S


def test_an_advance_moves_both_emulated_clocks_and_ends_the_waits_on_them():
    system = SteppedClock(monotonic_ns=10 * S)   # stands still: only advances move the clock
    emulated = EmulatedClock(BOOT_REALTIME, system=system)
    emulated.step(REAL_TIME)
    emulated.advance(600 * S)
    assert emulated.monotonic_ns() == 610 * S and emulated.monotonic() == 610.0
    assert emulated.realtime_ns() == REAL_TIME + 600 * S
    assert emulated.synchronised()
    emulated.step(REAL_TIME)                     # a step sets the wall clock, advanced or not
    assert emulated.realtime_ns() == REAL_TIME and emulated.monotonic_ns() == 610 * S
    with pytest.raises(ValueError, match="does not go back"):
        emulated.advance(-1)

    async def main():
        waiting = asyncio.create_task(emulated.sleep(60))
        await asyncio.sleep(3 * clock_module.ADVANCE_POLL_S)
        emulated.advance(30 * S)
        await asyncio.sleep(3 * clock_module.ADVANCE_POLL_S)
        half_way = waiting.done()
        emulated.advance(30 * S)
        await asyncio.wait_for(waiting, timeout=30)
        return half_way

    assert asyncio.run(main()) is False


def test_the_configuration_picks_the_emulated_clock_only_on_emulated_hardware(monkeypatch):
    from gateway.config.model import Config

    config = Config()
    config.gateway.hardware = "emulated"
    monkeypatch.setenv(clock_module.EMULATED_CLOCK_ENV, str(BOOT_REALTIME // S))
    made = clock_module.from_config(config)
    assert isinstance(made.source, EmulatedClock) and made.require_sync
    config.gateway.hardware = "real"
    with pytest.raises(ValueError, match="emulated clock is for HIL rigs"):
        clock_module.from_config(config)


def test_a_refused_state_is_an_error_shown_with_its_reason(monkeypatch, caplog):
    """A sandbox refusing adjtimex (EPERM) leaves the rule unable to work: the source says why,
    the clock is taken as it is (nothing would ever release a hold) and it is logged as an
    error, not a warning."""
    import ctypes
    import errno
    import logging

    class RefusingLibc:
        def adjtimex(self, buf):
            ctypes.set_errno(errno.EPERM)
            return -1

    monkeypatch.setattr(clock_module, "_libc", lambda: RefusingLibc())
    source = clock_module.SystemClock()
    assert source.synchronised() is None
    assert "adjtimex was refused (Operation not permitted)" in source.unknown_reason
    with caplog.at_level(logging.WARNING, logger="gateway.clock"):
        assert WallClock(source, require_sync=True).trusted()
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
    assert "refused" in caplog.records[0].getMessage()
