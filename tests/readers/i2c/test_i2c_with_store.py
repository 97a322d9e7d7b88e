"""The I2C reader writing into a real store in a temporary data directory."""

import asyncio
import random
import time

import pytest

from gateway import hardware
from gateway.config import defaults
from gateway.config.units import parse_duration
from gateway.hardware.emulated import Conditions, EmulatedBME280, EmulatedRig, EmulatedSHT3x
from gateway.readers import i2c
from gateway.readers.i2c import SensorConfig
from gateway.runtime import Context
from gateway.store import Store


@pytest.fixture
def rig(monkeypatch):
    monkeypatch.setenv("GATEWAY_HW", "emulated")
    rng = random.Random(7)
    room = lambda: Conditions(19.0 + rng.gauss(0, 0.01), 55.0 + rng.gauss(0, 0.02), 99000 + rng.gauss(0, 1))
    rig = EmulatedRig()
    rig.bus(1).attach(EmulatedBME280(0x77, environment=room))
    rig.bus(1).attach(EmulatedSHT3x(0x45, environment=room))
    hardware.replace_emulated_rig(rig)
    time.sleep(0.003)
    yield rig
    hardware.replace_emulated_rig(None)


def test_readings_land_in_the_store(rig, tmp_path, until):
    config = defaults()
    fast = parse_duration("40ms")
    reader_config = i2c.Config(bus=1, sensors=[
        SensorConfig(part="bme280", address=0x77, name="attic", interval=fast),
        SensorConfig(part="sht31", address=0x45, name="cellar", interval=fast)])

    async def main():
        store = Store(str(tmp_path), config.store)
        await store.open()
        context = Context(config=config, data_dir=str(tmp_path), components={"store": store})
        reader = i2c.create(reader_config, context)
        await reader.start(context)
        try:
            await until(lambda: reader.sensors["attic"].reads >= 4
                        and reader.sensors["cellar"].reads >= 4, "four reads of each part")
            rig.bus(1).device(0x45).vanish()
            await until(lambda: not reader.health()["sensors"]["cellar"]["healthy"],
                        "a failed read of the vanished part")
        finally:
            await reader.stop()
        columns = {c.key: c for c in await store.scan("raw", measurement="environment")}
        health = reader.health()
        await store.close()
        return columns, health

    columns, health = asyncio.run(main())
    keys = sorted(columns)
    assert keys == [
        "environment,address=0x45,bus=1,part=sht3x,sensor=cellar,source=emulated humidity_pct",
        "environment,address=0x45,bus=1,part=sht3x,sensor=cellar,source=emulated temperature_c",
        "environment,address=0x77,bus=1,part=bme280,sensor=attic,source=emulated humidity_pct",
        "environment,address=0x77,bus=1,part=bme280,sensor=attic,source=emulated pressure_pa",
        "environment,address=0x77,bus=1,part=bme280,sensor=attic,source=emulated temperature_c",
    ]
    pressure = columns["environment,address=0x77,bus=1,part=bme280,sensor=attic,source=emulated pressure_pa"]
    assert len(pressure) == health["sensors"]["attic"]["reads"] >= 4
    assert all(abs(v - 99000) < 10 for v in pressure.values)
    humidity = columns["environment,address=0x45,bus=1,part=sht3x,sensor=cellar,source=emulated humidity_pct"]
    assert len(humidity) == health["sensors"]["cellar"]["reads"]
    assert all(abs(v - 55.0) < 0.2 for v in humidity.values)
    assert not health["sensors"]["cellar"]["healthy"]
