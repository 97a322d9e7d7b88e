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


def test_edges_and_counts_in_the_store_across_restarts(factory, tmp_path):
    config = defaults()
    reader_config = gpio.Config(report_interval=parse_duration("1h"), inputs=[
        InputConfig(pin=17, name="door", debounce=parse_duration("5ms")),
        InputConfig(pin=27, name="meter", mode="counter", debounce=parse_duration("0s"))])
    door, meter = factory.pin(17), factory.pin(27)

    async def session(pulses):
        store = Store(str(tmp_path), config.store)
        await store.open()
        context = Context(config=config, data_dir=str(tmp_path), components={"store": store})
        reader = gpio.create(reader_config, context)
        await reader.start(context)
        await asyncio.sleep(0.02)
        door.drive_low()
        await asyncio.sleep(0.03)
        door.drive_high()
        for _ in range(pulses):
            meter.drive_low()
            meter.drive_high()
        await asyncio.sleep(0.03)
        reader.report()
        await asyncio.sleep(0.02)
        await reader.stop()
        columns = {c.series.tags["input"] + " " + c.series.field: list(c.values)
                   for c in await store.scan("raw", measurement="gpio")}
        await store.close()
        return columns

    asyncio.run(session(3))
    columns = asyncio.run(session(4))
    # door: state at start, active, inactive, state at report; twice
    assert columns["door state"] == [0, 1, 0, 0] * 2
    assert columns["meter count"] == [0, 3, 3, 7]
    assert len(columns["meter rate_per_s"]) == 4
