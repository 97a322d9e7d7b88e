"""GPIO reader on gpiozero's MockFactory: edges, debounce, pull and active level, counters."""

import asyncio
import json
import time
from types import SimpleNamespace

import pytest

from gateway import hardware
from gateway.config import load_text
from gateway.config.units import parse_duration
from gateway.errors import ConfigError
from gateway.hardware.emulated import EmulatedRig
from gateway.readers import gpio
from gateway.readers.gpio import Config, InputConfig
from gateway.readers.gpio.counters import CounterFile
from gateway.readers.precision import rounded
from gateway.runtime import Component, Context


class RecordingStore(Component):
    name = "store"

    def __init__(self):
        super().__init__()
        self.rows = []
        self.waits = []  # the wait flag of each write

    async def write(self, batch, bucket="raw", wait=True):
        self.waits.append(wait)
        for measurement, tags, field, ts, value in batch.points():
            self.rows.append((bucket, measurement, tags, field, ts, value))

    def of(self, name, field):
        return [(r[4], r[5]) for r in self.rows if r[2]["input"] == name and r[3] == field]


@pytest.fixture
def factory(monkeypatch):
    monkeypatch.setenv("GATEWAY_HW", "emulated")
    rig = EmulatedRig()
    hardware.replace_emulated_rig(rig)
    yield rig.pin_factory
    hardware.replace_emulated_rig(None)


def ms(n):
    return parse_duration(f"{n}ms")


async def settle(seconds=0.08):
    await asyncio.sleep(seconds)


def run(config, data_dir, scenario, store=None):
    async def main():
        st = store or RecordingStore()
        context = Context(config=SimpleNamespace(gateway=SimpleNamespace(hardware="auto")),
                          data_dir=str(data_dir), components={"store": st})
        reader = gpio.create(config, context)
        await reader.start(context)
        try:
            return await scenario(reader, st)
        finally:
            await reader.stop()
    return asyncio.run(main())


def test_each_change_is_a_point_with_the_time_of_its_edge(factory, tmp_path):
    config = Config(report_interval=parse_duration("1h"), inputs=[
        InputConfig(pin=17, name="door", pull="up", active_low=True, debounce=ms(20))])
    pin = factory.pin(17)

    async def scenario(reader, store):
        await settle()
        assert pin.pull == "up" and reader.inputs["door"].active is False
        before = time.time_ns()
        pin.drive_low()  # contact closes to GND: active
        await settle()
        pin.drive_high()
        await settle()
        return before, store, reader.health()

    before, store, health = run(config, tmp_path, scenario)
    assert store.waits and not any(store.waits)  # local readings do not wait for a sync
    states = store.of("door", "state")
    assert [v for _, v in states] == [0, 1, 0]  # state at start, then each change
    # stamped at the edge (to the millisecond: the precision at 20 ms debounce), not after it
    assert rounded(before, 10**6) <= states[1][0] < before + 15_000_000
    assert all(t % 10**6 == 0 for t, _ in states)
    assert states[1][0] < states[2][0]
    assert store.rows[0][1] == "gpio"
    assert store.rows[0][2] == {"input": "door", "pin": "17", "source": "emulated"}
    assert health["hardware"] == "emulated hardware"
    door = health["inputs"]["door"]
    assert door["changes"] == 2 and door["healthy"] and health["healthy"]


def test_bounces_are_filtered(factory, tmp_path):
    config = Config(report_interval=parse_duration("1h"), inputs=[
        InputConfig(pin=22, name="button", debounce=ms(30))])
    pin = factory.pin(22)

    async def scenario(reader, store):
        await settle()
        for _ in range(5):  # a contact closing with bounce, ending closed
            pin.drive_low()
            pin.drive_high()
        pin.drive_low()
        await settle()
        for _ in range(4):  # a glitch that ends where it started
            pin.drive_high()
            pin.drive_low()
        await settle()
        return store, reader.inputs["button"]

    store, state = run(config, tmp_path, scenario)
    assert [v for _, v in store.of("button", "state")] == [0, 1]
    assert state.raw_edges == 19 and state.changes == 1 and state.bounces == 1


def test_a_press_reaching_a_busy_loop_with_its_release_is_not_taken_for_a_bounce(factory, tmp_path):
    """The loop was busy for longer than the press: both edges reach it together. The press
    held 40 ms by the edges' own times, longer than the 5 ms debounce: it is a change."""
    config = Config(report_interval=parse_duration("1h"), inputs=[
        InputConfig(pin=23, name="button", pull="up", active_low=True, debounce=ms(5)),
        InputConfig(pin=24, name="presses", pull="up", active_low=True, debounce=ms(5),
                    mode="counter")])
    factory.pin(23)
    factory.pin(24)
    t0 = time.time_ns()

    async def scenario(reader, store):
        await settle()
        for name in ("button", "presses"):
            inp = reader.inputs[name]
            for press in range(3):
                began = t0 + press * 80_000_000
                reader._raw_edge(inp, False, began)                 # pressed (active low)
                reader._raw_edge(inp, True, began + 1_000_000)      # a bounce of 1 ms
                reader._raw_edge(inp, False, began + 2_000_000)
                reader._raw_edge(inp, True, began + 42_000_000)     # released 40 ms later
        await settle()
        return store, reader.inputs

    store, inputs = run(config, tmp_path, scenario)
    assert store.of("button", "state") == [
        (store.of("button", "state")[0][0], 0),                      # the state at start
        *((rounded(t0 + p * 80_000_000 + t, 10**6), v) for p in range(3)
          for t, v in ((0, 1), (42_000_000, 0)))]
    assert inputs["button"].changes == 6 and inputs["button"].bounces == 0
    assert inputs["presses"].count == 3


def test_pull_down_and_active_high(factory, tmp_path):
    config = Config(report_interval=parse_duration("1h"), inputs=[
        InputConfig(pin="GPIO5", name="pir", pull="down", active_low=False, debounce=ms(0))])
    pin = factory.pin(5)

    async def scenario(reader, store):
        await settle(0.02)
        assert pin.pull == "down"
        pin.drive_high()
        await settle(0.02)
        return store

    store = run(config, tmp_path, scenario)
    assert [v for _, v in store.of("pir", "state")] == [0, 1]


def test_current_state_is_reported_periodically(factory, tmp_path, until):
    config = Config(report_interval=ms(40), inputs=[InputConfig(pin=6, name="valve", pull="none",
                                                               active_low=False)])
    pin = factory.pin(6)
    pin.drive_high()

    async def scenario(reader, store):
        await until(lambda: len(store.of("valve", "state")) >= 4, "four reports")
        return store

    values = [v for _, v in run(config, tmp_path, scenario).of("valve", "state")]
    assert len(values) >= 4 and set(values) == {1}


def pulse(pin, n, bounce=0):
    for _ in range(n):
        for _ in range(bounce):
            pin.drive_low()
            pin.drive_high()
        pin.drive_low()
        yield
        pin.drive_high()
        yield


def test_counter_counts_debounced_pulses_with_a_rate(factory, tmp_path, until):
    # Reports a fraction of a second apart (report() by hand): times to the microsecond, not
    # the second that report_interval alone would give.
    config = Config(report_interval=parse_duration("1h"), precision=parse_duration("1us"), inputs=[
        InputConfig(pin=23, name="rain", mode="counter", debounce=ms(5), scale=0.2,
                    tags={"unit": "mm"})])
    pin = factory.pin(23)

    async def scenario(reader, store):
        await settle(0.02)
        for _ in pulse(pin, 7, bounce=3):
            await asyncio.sleep(0.012)
        await settle(0.02)
        reader.report()
        await until(lambda: len(store.of("rain", "count")) >= 2)
        return store, reader.health()

    store, health = run(config, tmp_path, scenario)
    counts = [v for _, v in store.of("rain", "count")]
    assert counts[0] == 0 and counts[1] == 7
    (t0, _), (t1, rate) = store.of("rain", "rate_per_s")
    assert rate == pytest.approx(7 / ((t1 - t0) / 1e9), rel=0.05)  # pulses per second between reports
    assert store.of("rain", "total")[1][1] == pytest.approx(1.4)
    assert store.of("rain", "rate")[1][1] == pytest.approx(rate * 0.2)
    assert health["inputs"]["rain"]["count"] == 7
    assert [r[2]["unit"] for r in store.rows if r[3] == "count"] == ["mm"] * len(counts)


def test_counts_survive_a_restart(factory, tmp_path, until):
    config = Config(report_interval=parse_duration("1h"), inputs=[
        InputConfig(pin=24, name="water", mode="counter", debounce=ms(0), count_on="both")])
    pin = factory.pin(24)

    async def first(reader, store):
        for _ in pulse(pin, 5):
            pass
        await settle(0.02)
        return reader.inputs["water"].count

    assert run(config, tmp_path, first) == 10  # both edges of 5 pulses
    saved = json.loads((tmp_path / "gpio-counters.json").read_text())
    assert saved == {"version": 1, "counts": {"water": 10}}

    async def second(reader, store):
        await settle(0.02)
        for _ in pulse(pin, 2):
            pass
        await settle(0.02)
        reader.report()
        await until(lambda: len(store.of("water", "count")) >= 2)
        return store

    store = run(config, tmp_path, second)
    assert [v for _, v in store.of("water", "count")] == [10, 14]
    assert CounterFile(tmp_path).load() == {"water": 14}


def test_damaged_counter_file_starts_from_zero(factory, tmp_path, caplog):
    (tmp_path / "gpio-counters.json").write_text('{"version": 1, "counts": {"water": -3}}')
    assert CounterFile(tmp_path).load() == {}
    assert "not a valid file of counters" in caplog.text
    (tmp_path / "gpio-counters.json").write_text("{torn")
    assert CounterFile(tmp_path).load() == {}
    config = Config(report_interval=parse_duration("1h"), inputs=[
        InputConfig(pin=24, name="water", mode="counter")])

    async def scenario(reader, store):
        return reader.inputs["water"].count

    assert run(config, tmp_path, scenario) == 0


def test_counter_save_failure_is_counted(factory, tmp_path, until):
    blocker = tmp_path / "file"
    blocker.write_text("")
    config = Config(report_interval=ms(30), inputs=[InputConfig(pin=24, name="w", mode="counter")])

    async def scenario(reader, store):
        await until(lambda: reader.health()["counter_save_errors"] >= 1, "a failed save")
        return reader.health()

    health = run(config, blocker / "sub", scenario)  # a data dir that cannot be created
    assert health["counter_save_errors"] >= 1


def test_bad_pin_is_reported_and_other_inputs_work(factory, tmp_path, until):
    config = Config(report_interval=parse_duration("1h"), inputs=[
        InputConfig(pin=2, name="i2c-sda", pull="down"),  # GPIO2 has a fixed pull-up
        InputConfig(pin=27, name="ok", debounce=ms(0))])

    async def scenario(reader, store):
        factory.pin(27).drive_low()
        await until(lambda: len(store.of("ok", "state")) >= 2, "the state at start and the change")
        return store, reader.health()

    store, health = run(config, tmp_path, scenario)
    assert not health["healthy"]
    assert "fixed pull" in health["inputs"]["i2c-sda"]["last_error"]
    assert [v for _, v in store.of("ok", "state")] == [0, 1]


def test_sample_loads_and_readme_includes_it():
    import pathlib
    sample = pathlib.Path(gpio.__file__).with_name("sample.toml")
    (config,) = load_text(sample.read_text()).readers["gpio"]
    assert [i.mode for i in config.inputs] == ["state", "counter"]
    assert sample.read_text() in sample.with_name("README.md").read_text()


@pytest.mark.parametrize("body,message", [
    ('pin = 99', "inputs[0].pin: BCM pin numbers are 0..53, got 99"),
    ('pin = "P17"', "inputs[0].pin: expected a pin such as 17"),
    ('pin = 4\npull = "sideways"', "inputs[0].pull: must be one of 'up', 'down', 'none'"),
    ('pin = 4\nscale = 2.0', "inputs[0].scale: only a counter input has a scale"),
    ('pin = 4\ndebounce = "-1ms"', "inputs[0].debounce"),
    ('pin = 4\ntags = {pin = "x"}', "tag 'pin' is set by the reader itself"),
])
def test_bad_input_settings_are_named(body, message):
    with pytest.raises(ConfigError) as e:
        load_text(f"[readers.gpio]\n[[readers.gpio.inputs]]\n{body}\n")
    assert message in str(e.value)


def test_duplicate_pins_and_names():
    with pytest.raises(ConfigError) as e:
        load_text('[readers.gpio]\n[[readers.gpio.inputs]]\npin = 4\n[[readers.gpio.inputs]]\n'
                  'pin = "GPIO4"\nname = "gpio4"\n')
    assert "inputs[1].name: input name 'gpio4' is used by inputs[0] too" in str(e.value)
