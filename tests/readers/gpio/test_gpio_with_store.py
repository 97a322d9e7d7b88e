"""The GPIO reader writing into a real store: edges and counter reports survive a restart."""

import asyncio

import pytest

from gateway import hardware
from gateway.config import defaults
from gateway.config.units import parse_duration
from gateway.hardware.emulated import EmulatedRig
from gateway.readers import gpio
from gateway.readers.gpio import InputConfig
from gateway.runtime import Context
from gateway.store import Store


@pytest.fixture
def factory(monkeypatch):
    monkeypatch.setenv("GATEWAY_HW", "emulated")
    rig = EmulatedRig()
    hardware.replace_emulated_rig(rig)
    yield rig.pin_factory
    hardware.replace_emulated_rig(None)


def test_edges_and_counts_in_the_store_across_restarts(factory, tmp_path, until):
    config = defaults()
    reader_config = gpio.Config(report_interval=parse_duration("1h"), inputs=[
        InputConfig(pin=17, name="door", debounce=parse_duration("5ms")),
        InputConfig(pin=27, name="meter", mode="counter", debounce=parse_duration("0s"))])
    door, meter = factory.pin(17), factory.pin(27)

    async def session(pulses):
        store = Store(str(tmp_path), config.store)
        await store.open()
        try:
            return await readings(store, pulses)
        finally:
            await store.close()

    async def readings(store, pulses):
        before = await columns(store)
        context = Context(config=config, data_dir=str(tmp_path), components={"store": store})
        reader = gpio.create(reader_config, context)
        await reader.start(context)
        inputs = lambda: reader.health()["inputs"]
        # The report at start is in the store before the door moves, and the door moves in a
        # later millisecond (the reader's precision): an edge in the report's millisecond would
        # be stored at its time and replace it, the state after that moment.
        await until(lambda: stored(store, "door state", len(before.get("door state", [])) + 1),
                    "the state at start in the store")
        reported_ns = max(await times(store, "door state"))
        await until(lambda: context.clock.now_ns() >= reported_ns + 1_000_000,
                    "a millisecond after the report at start")
        door.drive_low()
        await until(lambda: inputs()["door"]["changes"] == 1, "the door opening")
        door.drive_high()
        await until(lambda: inputs()["door"]["changes"] == 2, "the door closing")
        count = inputs()["meter"]["count"]
        for _ in range(pulses):
            meter.drive_low()
            meter.drive_high()
        await until(lambda: inputs()["meter"]["count"] == count + pulses, "the meter's pulses")
        reader.report()
        await until(lambda: stored(store, "door state", len(before.get("door state", [])) + 4),
                    "the door's edges and report in the store")
        await reader.stop()
        return await columns(store)

    asyncio.run(session(3))
    got = asyncio.run(session(4))
    # door: state at start, active, inactive, state at report; twice
    assert got["door state"] == [0, 1, 0, 0] * 2
    assert got["meter count"] == [0, 3, 3, 7]
    assert len(got["meter rate_per_s"]) == 4


async def columns(store) -> dict[str, list]:
    """The GPIO columns in the store: "input field" -> values in time order."""
    return {c.series.tags["input"] + " " + c.series.field: list(c.values)
            for c in await store.scan("raw", measurement="gpio")}


async def times(store, column: str) -> list[int]:
    return next(list(c.timestamps) for c in await store.scan("raw", measurement="gpio")
                if c.series.tags["input"] + " " + c.series.field == column)


async def stored(store, column: str, n: int) -> bool:
    return len((await columns(store)).get(column, [])) >= n
