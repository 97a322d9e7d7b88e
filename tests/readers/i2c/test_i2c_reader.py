"""The I2C reader polling the emulated rig: points, health, faults, back-off, recovery."""

import asyncio
import json
import random
import time
from types import SimpleNamespace

import pytest

from gateway import hardware
from gateway.config.units import parse_duration
from gateway.hardware.emulated import Conditions, EmulatedBME280, EmulatedRig, EmulatedSHT3x
from gateway.readers import i2c
from gateway.readers.i2c import Config, SensorConfig
from gateway.runtime import Component, Context


class RecordingStore(Component):
    """Stands in for the store: keeps every batch it is given, or fails when told to."""

    name = "store"

    def __init__(self):
        super().__init__()
        self.rows = []  # (bucket, measurement, tags, field, time_ns, value)
        self.waits = []  # the wait flag of each write
        self.fail = False

    async def write(self, batch, bucket="raw", wait=True):
        self.waits.append(wait)
        if self.fail:
            raise OSError(28, "No space left on device")
        for measurement, tags, field, ts, value in batch.points():
            self.rows.append((bucket, measurement, tags, field, ts, value))

    def values(self, sensor, field):
        return [r[5] for r in self.rows if r[2].get("sensor") == sensor and r[3] == field]


class Noisy:
    """Conditions with sensor-like noise, so consecutive raw codes differ as on real parts."""

    def __init__(self, conditions, seed):
        self.conditions = conditions
        self.rng = random.Random(seed)

    def __call__(self):
        c = self.conditions
        return Conditions(c.temperature_c + self.rng.gauss(0, 0.01),
                          c.humidity_pct + self.rng.gauss(0, 0.02),
                          c.pressure_pa + self.rng.gauss(0, 1.0))


@pytest.fixture
def rig(monkeypatch):
    monkeypatch.setenv("GATEWAY_HW", "emulated")
    rig = EmulatedRig()
    bus = rig.bus(1)
    bus.attach(EmulatedBME280(0x76, environment=Noisy(Conditions(22.5, 40.0, 100500.0), 1)))
    bus.attach(EmulatedSHT3x(0x44, environment=Noisy(Conditions(22.5, 40.0), 2)))
    hardware.replace_emulated_rig(rig)
    time.sleep(0.003)  # parts power up
    yield rig
    hardware.replace_emulated_rig(None)


def make_config(**overrides):
    fast = parse_duration("50ms")
    sensors = overrides.pop("sensors", None) or [
        SensorConfig(part="bme280", address=0x76, name="room", interval=fast),
        SensorConfig(part="sht31", address=0x44, name="shelf", interval=fast, tags={"site": "lab"}),
    ]
    config = Config(bus=1, sensors=sensors, retry_initial=parse_duration("20ms"),
                    retry_max=parse_duration("60ms"), jitter=0.05)
    for k, v in overrides.items():
        setattr(config, k, v)
    return config


def run_reader(config, scenario):
    async def main():
        store = RecordingStore()
        context = Context(config=SimpleNamespace(gateway=SimpleNamespace(hardware="auto")),
                          data_dir="/nonexistent", components={"store": store})
        reader = i2c.create(config, context)
        await reader.start(context)
        try:
            return await scenario(reader, store)
        finally:
            await reader.stop()
            await reader.stop()  # safe twice
    return asyncio.run(main())


def test_reads_both_parts_into_the_raw_bucket(rig, until):
    async def scenario(reader, store):
        await until(lambda: len(store.values("room", "pressure_pa")) >= 3
                    and len(store.values("shelf", "humidity_pct")) >= 3)
        assert store.waits and not any(store.waits)  # local readings do not wait for a sync
        return reader.health()

    health = run_reader(make_config(), scenario)
    assert health["healthy"] and health["name"] == "reader:i2c:1"
    room, shelf = health["sensors"]["room"], health["sensors"]["shelf"]
    assert room["healthy"] and room["reads"] >= 3 and room["last_error"] is None
    assert shelf["part"] == "sht3x" and shelf["address"] == "0x44"
    assert room["device"]["calibration"]["T1"] == 27504 and shelf["device"]["repeatability"] == "high"
    assert health["hardware"] == "emulated hardware"
    json.dumps(health)  # the status page serves it as JSON


def test_points_carry_tags_fields_and_values(rig, until):
    async def scenario(reader, store):
        await until(lambda: store.values("shelf", "temperature_c") and store.values("room", "humidity_pct"))
        return store.rows

    rows = run_reader(make_config(), scenario)
    buckets = {r[0] for r in rows}
    assert buckets == {"raw"}
    room = [r for r in rows if r[2]["sensor"] == "room"]
    assert {r[3] for r in room} == {"temperature_c", "humidity_pct", "pressure_pa"}
    assert room[0][1] == "environment"
    # measured on the emulated rig, so tagged as such: fake data never passes for real
    assert room[0][2] == {"sensor": "room", "part": "bme280", "bus": "1", "address": "0x76",
                          "source": "emulated"}
    shelf = [r for r in rows if r[2]["sensor"] == "shelf"]
    assert shelf[0][2]["site"] == "lab"
    by_field = {r[3]: r[5] for r in room}
    assert by_field["temperature_c"] == pytest.approx(22.5, abs=0.05)
    assert by_field["pressure_pa"] == pytest.approx(100500.0, abs=6)
    assert abs(rows[0][4] - time.time_ns()) < 60e9


def test_reading_times_are_rounded_to_the_sensors_precision(rig, until):
    """At a 50 ms interval (47.5 ms at the shortest with the jitter) readings are stored to the
    millisecond, each poll at its own time; a configured precision applies to its sensor."""
    sensors = [SensorConfig(part="bme280", address=0x76, name="room", interval=parse_duration("50ms")),
               SensorConfig(part="sht31", address=0x44, name="shelf", interval=parse_duration("50ms"),
                            precision=parse_duration("10ms"))]

    async def scenario(reader, store):
        await until(lambda: len(store.values("room", "temperature_c")) >= 5
                    and len(store.values("shelf", "temperature_c")) >= 5)
        return store.rows

    rows = run_reader(make_config(sensors=sensors), scenario)
    room = [r[4] for r in rows if r[2]["sensor"] == "room" and r[3] == "temperature_c"]
    shelf = [r[4] for r in rows if r[2]["sensor"] == "shelf" and r[3] == "temperature_c"]
    assert all(t % 10**6 == 0 for t in room) and any(t % 10**7 for t in room)
    assert all(t % 10**7 == 0 for t in shelf)
    assert room == sorted(set(room)) and shelf == sorted(set(shelf))  # no two polls at one time


FAULTS = {
    "nack": (lambda p: p.nack(None), "Remote I/O error"),
    "vanish": (lambda p: p.vanish(), "Remote I/O error"),
    # Another part swapped in: the hot-plug glitch (one NACK) makes the reader set up afresh.
    "wrong chip id": (lambda p: (p.wrong_chip_id(0x58), p.nack(1)), "chip id 0x58"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_failing_part_is_unhealthy_others_continue_then_it_recovers(rig, fault, until):
    inject, message = FAULTS[fault]
    bme = rig.bus(1).device(0x76)

    async def scenario(reader, store):
        await until(lambda: reader.health()["sensors"]["room"]["healthy"])
        inject(bme)
        room = reader.sensors["room"]
        await until(lambda: room.failed_reads >= 3)
        health = reader.health()
        before = len(store.values("shelf", "temperature_c"))
        stored_room = len(store.values("room", "temperature_c"))
        await until(lambda: len(store.values("shelf", "temperature_c")) >= before + 3)
        assert len(store.values("room", "temperature_c")) == stored_room
        bme.clear_faults()
        bme.reappear()
        await until(lambda: room.healthy)
        await until(lambda: len(store.values("room", "temperature_c")) > stored_room)
        return health

    health = run_reader(make_config(), scenario)
    room = health["sensors"]["room"]
    assert not room["healthy"] and not health["healthy"]
    assert message in room["last_error"]
    assert room["consecutive_failures"] >= 3 and room["last_error_at"] is not None
    assert health["sensors"]["shelf"]["healthy"]


def test_corrupt_crc_costs_one_read(rig, until):
    sht = rig.bus(1).device(0x44)

    async def scenario(reader, store):
        shelf = reader.sensors["shelf"]
        await until(lambda: shelf.reads >= 1)
        sht.corrupt_crc(1)
        await until(lambda: shelf.failed_reads == 1)
        assert "CRC mismatch" in shelf.last_error and not shelf.healthy
        await until(lambda: shelf.healthy)
        return shelf.failed_reads

    assert run_reader(make_config(), scenario) == 1


def test_stuck_part_is_flagged_and_not_stored(rig, until):
    bme = rig.bus(1).device(0x76)
    sensors = [SensorConfig(part="bme280", address=0x76, name="room",
                            interval=parse_duration("30ms"), stuck_after=3)]
    conditions = iter(Conditions(20 + i / 10, 40.0, 100000.0 + i) for i in range(100000))
    bme.environment = lambda: next(conditions)

    async def scenario(reader, store):
        room = reader.sensors["room"]
        await until(lambda: room.reads >= 2)
        bme.stick()
        await until(lambda: room.stuck_reads >= 2)
        assert not room.healthy and "stuck" in room.last_error
        temps = store.values("room", "temperature_c")
        assert len(temps) - len(set(temps)) <= 3  # at most the first identical reads went in
        bme.unstick()
        await until(lambda: room.healthy)
        return reader.health()

    health = run_reader(make_config(sensors=sensors), scenario)
    assert health["sensors"]["room"]["stuck_reads"] >= 2


def test_values_outside_the_physical_range_are_dropped_and_counted(rig, until):
    rig.bus(1).device(0x76).environment.conditions = Conditions(22.0, 40.0, 25000.0)  # < 300 hPa
    rig.bus(1).device(0x44).environment.conditions = Conditions(128.0, 40.0)  # above 125 °C

    async def scenario(reader, store):
        await until(lambda: reader.sensors["room"].rejected_values >= 2
                    and reader.sensors["shelf"].rejected_values >= 2)
        return reader.health(), store

    health, store = run_reader(make_config(), scenario)
    assert store.values("room", "pressure_pa") == []
    assert store.values("room", "temperature_c") and store.values("shelf", "humidity_pct")
    assert store.values("shelf", "temperature_c") == []
    assert health["sensors"]["room"]["healthy"]  # the part answered; the value was implausible


def test_store_failure_is_counted_and_polling_goes_on(rig, until):
    async def scenario(reader, store):
        store.fail = True
        await until(lambda: reader.store_errors >= 2)
        store.fail = False
        await until(lambda: store.values("room", "temperature_c"))
        return reader.health()

    health = run_reader(make_config(), scenario)
    assert health["store_errors"] >= 2 and health["sensors"]["room"]["healthy"]


def test_retry_backoff_doubles_up_to_the_cap(rig):
    config = make_config(retry_initial=parse_duration("1s"), retry_max=parse_duration("30s"))
    reader = i2c.create(config, Context(config=None, data_dir="/x"))
    assert [reader.retry_delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert reader.retry_delay(10**6) == 30


def test_missing_part_backs_off_instead_of_hammering(rig, until):
    sensors = [SensorConfig(part="sht4x", address=0x45, name="absent", interval=parse_duration("10ms"))]
    config = make_config(sensors=sensors, retry_initial=parse_duration("50ms"),
                         retry_max=parse_duration("200ms"))

    async def scenario(reader, store):
        loop = asyncio.get_running_loop()
        started = loop.time()
        state = reader.sensors["absent"]
        await until(lambda: state.failed_reads >= 4, "four failed reads")
        return reader, state.failed_reads, loop.time() - started, state.last_error

    reader, failed, elapsed, last_error = run_reader(config, scenario)
    # The tries the back-off (50, 100, 200, 200 ms, each shortened by at most the jitter)
    # leaves room for in the time it took, plus one already under way when timing began;
    # 10 ms polls would make about elapsed / 0.01. A slow machine only allows more.
    allowed, waited = 2, 0.0
    while waited + reader.retry_delay(allowed - 1) * (1 - config.jitter) <= elapsed:
        waited += reader.retry_delay(allowed - 1) * (1 - config.jitter)
        allowed += 1
    assert 4 <= failed <= allowed
    assert "Remote I/O error" in last_error


def test_emulated_rig_defaults_probe_nothing_on_real_hardware(rig, monkeypatch):
    monkeypatch.setenv("GATEWAY_HW", "emulated")
    (config,) = i2c.default_configs()
    assert config.bus == 1
    assert [(s.part, s.address) for s in config.sensors] == [("bme280", 0x76), ("sht3x", 0x44)]
    monkeypatch.setenv("GATEWAY_HW", "real")
    assert i2c.default_configs() == []

    async def scenario(reader, store):
        await asyncio.sleep(0.05)
        return reader

    reader = run_reader(config, scenario)  # as if the file came from an emulated machine
    assert reader.sensors == {} and reader._bus is None


def test_unopenable_bus_is_reported_and_opened_later(rig, monkeypatch, until):
    monkeypatch.setenv("GATEWAY_HW", "real")  # no /dev/i2c-250 here
    rig.bus(250).attach(EmulatedBME280(0x76, environment=Noisy(Conditions(20.0, 50.0, 100000.0), 3)))
    sensors = [SensorConfig(part="bme280", address=0x76, name="late", interval=parse_duration("20ms"))]

    async def scenario(reader, store):
        first = reader.health()
        # The bus appears (as when i2c-dev loads late): here, by switching to the emulated rig.
        monkeypatch.setenv("GATEWAY_HW", "emulated")
        await until(lambda: "late" in reader.sensors and reader.sensors["late"].healthy)
        await until(lambda: store.values("late", "pressure_pa"))
        return first, reader.health()

    first, later = run_reader(make_config(bus=250, sensors=sensors), scenario)
    assert not first["healthy"] and "/dev/i2c-250" in first["error"] and first["sensors"] == {}
    assert later["healthy"] and "error" not in later
