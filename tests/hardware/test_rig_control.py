"""The rig-control socket: HIL rigs press buttons and unplug parts of the emulated rig through it;
bad requests are answered, never fatal; real hardware never serves it."""

import asyncio
import json

import pytest

from gateway import hardware
from gateway.clock import EmulatedClock, WallClock
from gateway.hardware.emulated.control import RigControl, RigControlError, press
from gateway.hardware.emulated.rig import default_rig
from gateway.runtime import Context

S = 10**9


@pytest.fixture
def rig():
    r = default_rig()
    hardware.replace_emulated_rig(r)
    yield r
    hardware.replace_emulated_rig(None)


async def ask(path, *requests):
    reader, writer = await asyncio.open_unix_connection(str(path))
    answers = []
    for request in requests:
        writer.write((request if isinstance(request, bytes) else json.dumps(request).encode()) + b"\n")
        await writer.drain()
        answers.append(json.loads(await reader.readline()))
    writer.close()
    return answers


def run_with_control(tmp_path, *requests, clock=None):
    async def main():
        control = RigControl(str(tmp_path / "rig.sock"), "emulated", clock)
        await control.start(Context(config=None, data_dir=str(tmp_path)))
        try:
            return await ask(tmp_path / "rig.sock", *requests), control
        finally:
            await control.stop()
    return asyncio.run(main())


def test_press_drives_the_pin_and_i2c_faults_reach_the_part(tmp_path, rig):
    pin = rig.pin_factory.pin(17)
    pin.function = "input"
    pin.pull = "up"
    pin.edges = "both"
    changes = []

    def on_change(ticks, state):
        changes.append(state)

    pin.when_changed = on_change  # gpiozero holds callbacks weakly: this frame keeps it alive
    answers, control = run_with_control(
        tmp_path,
        {"op": "hello"},
        {"op": "press", "pin": 17, "count": 3, "hold_ms": 0, "gap_ms": 0},
        {"op": "i2c", "bus": 1, "address": 0x76, "fault": "vanish"})
    assert [a["ok"] for a in answers] == [True, True, True]
    assert answers[0]["buses"] == {"1": [0x44, 0x76]}
    assert changes == [0, 1, 0, 1, 0, 1]
    assert not rig.bus(1).device(0x76).acknowledges()
    assert control.requests == 3 and control.errors == 0
    assert not (tmp_path / "rig.sock").exists()


@pytest.mark.parametrize("request_, error", [
    (b"not json", "Expecting value"),
    ({"op": "press", "pin": "17"}, "pin must be an integer"),
    ({"op": "press", "pin": 17, "count": 10**9}, "count must be between"),
    ({"op": "i2c", "bus": 1, "address": 0x50, "fault": "vanish"}, "no emulated part at bus 1 address 0x50"),
    ({"op": "i2c", "bus": 1, "address": 0x76, "fault": "melt"}, "fault must be one of"),
    ({"op": "reboot"}, "unknown op 'reboot'"),
    ([1, 2], "a request is a JSON object"),
])
def test_bad_requests_are_answered_and_counted(tmp_path, rig, request_, error):
    answers, control = run_with_control(tmp_path, request_, {"op": "hello"})
    assert answers[0]["ok"] is False and error in answers[0]["error"]
    assert answers[1]["ok"] is True  # the connection and the component live on
    assert control.errors == 1


def test_the_emulated_clock_is_stepped_and_advanced(tmp_path, rig):
    source = EmulatedClock(1_735_689_600 * S)
    answers, control = run_with_control(
        tmp_path,
        {"op": "clock", "step_to_ns": 1_780_272_000 * S},
        {"op": "clock", "advance_ns": 600 * S},
        {"op": "clock", "advance_ns": -S},
        {"op": "clock", "advance_ns": 2 * 86_400 * S}, clock=WallClock(source))
    assert [a["ok"] for a in answers] == [True, True, False, False]
    assert 600 * S <= answers[1]["realtime_ns"] - answers[0]["realtime_ns"] < 660 * S
    assert "advance_ns must be between 0 and" in answers[2]["error"]
    assert source.synchronised() and control.errors == 2


def test_a_system_clock_is_neither_stepped_nor_advanced(tmp_path, rig):
    answers, _ = run_with_control(tmp_path, {"op": "clock", "advance_ns": S})
    assert not answers[0]["ok"] and "the clock is the system's" in answers[0]["error"]


def test_real_hardware_never_serves_it(tmp_path, monkeypatch):
    monkeypatch.delenv("GATEWAY_HW", raising=False)
    control = RigControl(str(tmp_path / "rig.sock"), "real")
    with pytest.raises(RigControlError, match="only served on the emulated rig"):
        asyncio.run(control.start(Context(config=None, data_dir=str(tmp_path))))
    assert not (tmp_path / "rig.sock").exists()


def test_press_helper_orders_levels():
    events = []

    class Pin:
        def drive_low(self):
            events.append("low")

        def drive_high(self):
            events.append("high")

    assert press(Pin(), 2, 0, 0, active_low=True, sleep=lambda s: None) == 2
    assert events == ["low", "high", "low", "high"]
