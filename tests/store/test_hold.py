"""The store's hold: points timed before the clock was synchronised wait in a synced journal,
survive a restart, and are stored with their real times once the clock is synchronised."""

from __future__ import annotations

import asyncio
import os

import pytest

from gateway.clock import HELD_BASE_NS, WallClock
from gateway.errors import StoreError
from gateway.store import Store
from gateway.store.control import ControlClient, ControlServer
from gateway.store import hold as hold_module
from gateway.store.hold import FILE_NAME, Hold

from clock_support import REAL_TIME, S, SteppedClock
from store_support import make_batch, read_all

DEVICE_TIME = REAL_TIME - 3600 * S   # a device with a good clock of its own
MAX_HELD = 1 << 20


def held_store(data_dir, config, source, max_held=MAX_HELD):
    return Store(data_dir, config, wall_clock=WallClock(source, require_sync=True),
                 max_held=max_held)


def synchronise(source, clock: WallClock, when: int = REAL_TIME) -> None:
    source.step(when)
    source.advance(1)   # past the poll interval of the kernel's state
    assert clock.trusted()


def test_held_points_are_stored_with_their_real_times_once_synchronised(data_dir, config, until):
    asyncio.run(_held_points_are_stored_with_their_real_times_once_synchronised(data_dir, config, until))


async def _held_points_are_stored_with_their_real_times_once_synchronised(data_dir, config, until):
    source = SteppedClock()
    async with held_store(data_dir, config, source) as store:
        clock = store.wall_clock
        taken = []
        for i in range(5):
            taken.append(source.mono)
            result = await store.write(make_batch([("t", {"s": "a"}, "v", clock.now_ns(), float(i)),
                                                   ("t", {"s": "dev"}, "v", DEVICE_TIME + i * S, i)]))
            assert result.points == 2
            source.advance(10)
        # The device's own times are stored at once; the gateway's wait.
        assert await read_all(store) == {"t,s=dev v": [(DEVICE_TIME + i * S, i) for i in range(5)]}
        assert store.hold.status()["held_points"] == 5
        source.advance(120)
        synchronise(source, clock)
        sync_real, sync_mono = source.real, source.mono
        await until(lambda: store.hold.held_points == 0, "the release of the held points")
        got = (await read_all(store))["t,s=a v"]
        assert got == [(sync_real - (sync_mono - m), float(i)) for i, m in enumerate(taken)]
        assert store.hold.status()["released_points"] == 5
        assert not os.path.exists(os.path.join(store.path, FILE_NAME))
        # A held time that reaches the store after the sync is re-timed on the way in.
        late = HELD_BASE_NS + source.mono - 2 * S
        await store.write(make_batch([("t", {"s": "b"}, "v", late, 1.0)]))
        assert (await read_all(store))["t,s=b v"] == [(source.real - 2 * S, 1.0)]


def test_gateway_write_through_the_daemon_holds_its_untimed_lines(data_dir, config, until):
    asyncio.run(_gateway_write_through_the_daemon_holds_its_untimed_lines(data_dir, config, until))


async def _gateway_write_through_the_daemon_holds_its_untimed_lines(data_dir, config, until):
    source = SteppedClock()
    async with held_store(data_dir, config, source) as store:
        control = ControlServer(store)
        await control.start()
        try:
            requested = source.mono
            lines = [b"t,s=cli v=1\n", f"t,s=dev v=2 {DEVICE_TIME}\n".encode()]
            report = await asyncio.to_thread(ControlClient(store.path).write, "raw", "ns", lines)
        finally:
            await control.stop()
        assert report["points"] == 2 and report["refused"] == 0
        # The line with a time is the client's and stored at once; the other waits for the sync.
        assert await read_all(store) == {"t,s=dev v": [(DEVICE_TIME, 2.0)]}
        assert store.hold.held_points == 1
        source.advance(60)
        synchronise(source, store.wall_clock)
        await until(lambda: store.hold.held_points == 0, "the release of the held points")
        real = source.real - (source.mono - requested)
        assert (await read_all(store))["t,s=cli v"] == [(real, 1.0)]


def test_held_points_survive_a_restart_before_the_sync(data_dir, config, until):
    asyncio.run(_held_points_survive_a_restart_before_the_sync(data_dir, config, until))


async def _held_points_survive_a_restart_before_the_sync(data_dir, config, until):
    source = SteppedClock()
    async with held_store(data_dir, config, source) as store:
        first = source.mono
        await store.write(make_batch([("t", {}, "v", store.wall_clock.now_ns(), 1.0)]))
    source.advance(30)    # the gateway restarts; the same boot, so the same monotonic clock
    async with held_store(data_dir, config, source) as store:
        assert store.hold.held_points == 1
        second = source.mono
        await store.write(make_batch([("t", {}, "v", store.wall_clock.now_ns(), 2.0)]))
        source.advance(5)
        synchronise(source, store.wall_clock)
        await until(lambda: store.hold.held_points == 0, "the release of the held points")
        offset = source.real - source.mono
        assert (await read_all(store))["t v"] == [(offset + first, 1.0), (offset + second, 2.0)]


def test_points_of_an_earlier_boot_end_where_this_boot_began(data_dir, config, until):
    asyncio.run(_points_of_an_earlier_boot_end_where_this_boot_began(data_dir, config, until))


async def _points_of_an_earlier_boot_end_where_this_boot_began(data_dir, config, until):
    source = SteppedClock(monotonic_ns=50 * S, boot="boot-a")
    async with held_store(data_dir, config, source) as store:
        for value in (1.0, 2.0, 3.0):
            await store.write(make_batch([("t", {}, "v", store.wall_clock.now_ns(), value)]))
            source.advance(10)
    # Power cut; the next boot's monotonic clock starts again, and NTP comes at 40 s.
    boot_b = SteppedClock(monotonic_ns=40 * S, boot="boot-b")
    async with held_store(data_dir, config, boot_b) as store:
        assert store.hold.status()["earlier_boots"] == 1
        synchronise(boot_b, store.wall_clock)
        await until(lambda: store.hold.held_points == 0, "the release of the held points")
        boot_started = boot_b.real - boot_b.mono
        got = (await read_all(store))["t v"]
        assert [v for _, v in got] == [1.0, 2.0, 3.0]
        assert got[-1][0] == boot_started - 1
        assert [b[0] - a[0] for a, b in zip(got, got[1:])] == [10 * S, 10 * S]


def test_a_full_hold_refuses_the_write_and_keeps_what_it_has(data_dir, config):
    asyncio.run(_a_full_hold_refuses_the_write_and_keeps_what_it_has(data_dir, config))


async def _a_full_hold_refuses_the_write_and_keeps_what_it_has(data_dir, config):
    source = SteppedClock()
    async with held_store(data_dir, config, source, max_held=300) as store:
        await store.write(make_batch([("t", {}, "v", store.wall_clock.now_ns(), 1.0)]))
        big = make_batch([("t", {"n": str(i)}, "v", store.wall_clock.now_ns(), 1.0) for i in range(20)])
        with pytest.raises(StoreError, match="max_held"):
            await store.write(big)
        status = store.hold.status()
        assert status["held_points"] == 1 and status["refused_points"] == 20


def test_a_torn_append_and_a_damaged_record_are_counted_and_the_rest_kept(data_dir, config, until):
    asyncio.run(_a_torn_append_and_a_damaged_record_are_counted_and_the_rest_kept(data_dir, config, until))


async def _a_torn_append_and_a_damaged_record_are_counted_and_the_rest_kept(data_dir, config, until):
    source = SteppedClock()
    async with held_store(data_dir, config, source) as store:
        for value in (1.0, 2.0, 3.0):
            await store.write(make_batch([("t", {}, "v", store.wall_clock.now_ns(), value)]))
            source.advance(1)
        path = os.path.join(store.path, FILE_NAME)
    data = bytearray(open(path, "rb").read())
    second = data.index(b"HOLD", 1)
    data[data.index(b"2", data.index(b"\n", second) + 1)] ^= 0x01   # a bit flips in the second
    data += b"HOLD boot-a raw 1 40 0000"                             # and an append was cut
    open(path, "wb").write(bytes(data))
    async with held_store(data_dir, config, source) as store:
        status = store.hold.status()
        assert status["damaged_records"] == 1 and status["torn_bytes"] == 25
        assert status["held_points"] == 2
        synchronise(source, store.wall_clock)
        await until(lambda: store.hold.held_points == 0, "the release of the held points")
        assert [v for _, v in (await read_all(store))["t v"]] == [1.0, 3.0]


def test_without_the_rule_nothing_is_held(data_dir, config):
    asyncio.run(_without_the_rule_nothing_is_held(data_dir, config))


async def _without_the_rule_nothing_is_held(data_dir, config):
    source = SteppedClock()
    async with Store(data_dir, config, wall_clock=WallClock(source, require_sync=False)) as store:
        assert store.hold is None
        await store.write(make_batch([("t", {}, "v", store.wall_clock.now_ns(), 1.0)]))
        assert await read_all(store) == {"t v": [(source.real, 1.0)]}


def test_the_release_goes_batch_by_batch_through_every_bucket_and_boot(tmp_path, monkeypatch):
    asyncio.run(_the_release_goes_batch_by_batch_through_every_bucket_and_boot(tmp_path, monkeypatch))


async def _the_release_goes_batch_by_batch_through_every_bucket_and_boot(tmp_path, monkeypatch):
    monkeypatch.setattr(hold_module, "RELEASE_BATCH_POINTS", 4)
    earlier = SteppedClock(monotonic_ns=100 * S, boot="boot-a")
    hold = Hold(str(tmp_path), WallClock(earlier, require_sync=True), MAX_HELD)
    for i in range(6):    # a boot that ended in a power cut, one point a second
        await hold.append("raw", [("t v", HELD_BASE_NS + earlier.mono, float(i))])
        earlier.advance(1)
    source = SteppedClock(monotonic_ns=20 * S, boot="boot-b")
    hold = Hold(str(tmp_path), WallClock(source, require_sync=True), MAX_HELD)
    await asyncio.to_thread(hold.open)
    assert hold.held_points == 6 and hold.earlier_boots == 1
    taken = []
    for i in range(7):    # this boot: two buckets in turn
        taken.append(source.mono)
        await hold.append("rollup" if i % 2 else "raw", [("u v", HELD_BASE_NS + source.mono, float(i))])
        source.advance(1)
    synchronise(source, hold.clock)
    written: list[tuple[str, list]] = []

    async def write(batch, bucket):
        written.append((bucket, list(batch)))

    assert await hold.release(write, {"raw", "rollup"}) == 13
    assert all(len(points) <= 4 for _, points in written)
    assert len(written) == 4           # raw: 6 + 4 points in batches of 4, 4, 2; rollup: 3 in one
    offset = source.real - source.mono
    began = offset - 1                 # where this boot began, less a nanosecond
    assert [(k, ts, v) for bucket, points in written if bucket == "raw" for k, ts, v in points
            if k == "t v"] == [("t v", began - (5 - i) * S, float(i)) for i in range(6)]
    got = sorted((bucket, ts, v) for bucket, points in written for k, ts, v in points if k == "u v")
    assert got == sorted(("rollup" if i % 2 else "raw", offset + m, float(i)) for i, m in enumerate(taken))
    assert not os.path.exists(os.path.join(str(tmp_path), FILE_NAME))
