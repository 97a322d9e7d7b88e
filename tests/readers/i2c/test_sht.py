"""SHT3x and SHT4x drivers: command bytes, CRC, conversion formulas, timing and faults."""

import errno

import pytest
from smbus2 import i2c_msg

from gateway.errors import DeviceError
from gateway.hardware.emulated.bme280 import Conditions
from gateway.hardware.emulated.sht import EmulatedSHT3x, EmulatedSHT4x, sensirion_crc8
from gateway.readers.i2c import sht3x, sht4x
from gateway.readers.i2c.sensirion import crc8, words
from gateway.readers.i2c.sht3x import SHT3x
from gateway.readers.i2c.sht4x import SHT4x


def test_crc_of_the_datasheet_example():
    assert crc8(b"\xbe\xef") == 0x92
    assert sensirion_crc8(b"\xbe\xef") == 0x92  # the model's own implementation agrees


@pytest.mark.parametrize("data", [b"\x00\x00", b"\xff\xff", b"\x66\x66", b"\x12\x34\x56"])
def test_table_crc_matches_bitwise(data):
    assert crc8(data) == sensirion_crc8(data)


def test_conversion_formulas_at_the_ends():
    assert sht3x.temperature_c(0) == -45.0
    assert sht3x.temperature_c(0xFFFF) == 130.0
    assert sht3x.humidity_pct(0xFFFF) == 100.0
    assert sht3x.humidity_pct(0) == 0.0
    assert sht4x.humidity_pct(0) == 0.0      # -6 %RH cropped
    assert sht4x.humidity_pct(0xFFFF) == 100.0  # 119 %RH cropped
    assert sht4x.humidity_pct(0x8000) == pytest.approx(-6 + 125 * 0x8000 / 65535, abs=0.0005)
    assert sht4x.temperature_c(0x6666) == pytest.approx(-45 + 175 * 0x6666 / 65535, abs=0.0005)


def test_rounded_readings_keep_every_raw_code_apart():
    # Rounding to 0.001 loses no information: each raw code still has a value of its own.
    codes = range(0x10000)
    for convert in (sht3x.temperature_c, sht3x.humidity_pct, sht4x.temperature_c):
        values = [convert(c) for c in codes]
        assert all(a < b for a, b in zip(values, values[1:])), convert
        assert all(v == round(v, 3) for v in values[::97])
    unclamped = [sht4x.humidity_pct(c) for c in range(3146, 55575)]   # the codes within 0..100 %RH
    assert all(a < b for a, b in zip(unclamped, unclamped[1:]))


def test_words_checks_each_crc():
    good = b"\xbe\xef\x92\x00\x00\x81"
    assert words(good, ("t", "rh"), "here") == [0xBEEF, 0]
    with pytest.raises(DeviceError, match=r"here: CRC mismatch on the rh word \(got 0x80, expected 0x81\)"):
        words(good[:5] + b"\x80", ("t", "rh"), "here")
    with pytest.raises(DeviceError, match="short read"):
        words(good[:4], ("t", "rh"), "here")


# -- SHT3x --------------------------------------------------------------------------------
def test_sht3x_command_bytes_and_result_layout(bus, clock):
    part = bus.attach(EmulatedSHT3x(0x44, conditions=Conditions(25.0, 50.0), clock=clock))
    clock.advance(0.002)
    bus.write_byte_data(0x44, 0x24, 0x00)  # single shot, high repeatability, no stretching
    clock.advance(0.0155)
    msg = i2c_msg.read(0x44, 6)
    bus.i2c_rdwr(msg)
    data = bytes(msg)
    t_word = round(70.0 * 65535 / 175)
    rh_word = round(0.5 * 65535)
    assert data == bytes([t_word >> 8, t_word & 0xFF, crc8(data[0:2]),
                          rh_word >> 8, rh_word & 0xFF, crc8(data[3:5])])
    assert part.conversions == 1


def test_sht3x_read_before_conversion_ends_is_nacked(bus, clock):
    bus.attach(EmulatedSHT3x(0x44, clock=clock))
    clock.advance(0.002)
    bus.write_byte_data(0x44, 0x24, 0x00)
    clock.advance(0.010)
    with pytest.raises(OSError) as e:
        bus.i2c_rdwr(i2c_msg.read(0x44, 6))
    assert e.value.errno == errno.EREMOTEIO
    clock.advance(0.006)
    bus.i2c_rdwr(i2c_msg.read(0x44, 6))
    with pytest.raises(OSError):  # nothing more to send until the next command
        bus.i2c_rdwr(i2c_msg.read(0x44, 6))


@pytest.mark.parametrize("repeatability,wait", [("high", 0.0155), ("medium", 0.0065), ("low", 0.0045)])
def test_sht3x_measures_with_each_repeatability(bus, clock, run, repeatability, wait):
    bus.attach(EmulatedSHT3x(0x45, conditions=Conditions(-20.5, 87.25), clock=clock))
    clock.advance(0.002)
    driver = SHT3x(bus, 0x45, repeatability=repeatability)
    run(driver.setup())
    assert driver.status & 0x0010  # reset detected after the soft reset
    steps = driver.measure()
    assert next(steps) == wait
    steps.close()
    f = run(driver.measure()).rows[0].fields
    assert f["temperature_c"] == pytest.approx(-20.5, abs=0.003)
    assert f["humidity_pct"] == pytest.approx(87.25, abs=0.002)


def test_sht3x_status_register_and_bad_command(bus, clock):
    bus.attach(EmulatedSHT3x(0x44, clock=clock))
    clock.advance(0.002)
    bus.write_byte_data(0x44, 0xF3, 0x2D)
    msg = i2c_msg.read(0x44, 3)
    bus.i2c_rdwr(msg)
    assert words(bytes(msg), ("status",), "x") == [0x8010]
    bus.write_byte_data(0x44, 0x30, 0x41)  # clear status
    bus.write_byte_data(0x44, 0x12, 0x34)  # not a command
    bus.write_byte_data(0x44, 0xF3, 0x2D)
    msg = i2c_msg.read(0x44, 3)
    bus.i2c_rdwr(msg)
    assert words(bytes(msg), ("status",), "x") == [0x0002]  # command not processed


def test_sht3x_corrupt_crc_then_recovers(bus, clock, run):
    part = bus.attach(EmulatedSHT3x(0x44, clock=clock))
    clock.advance(0.002)
    driver = SHT3x(bus, 0x44)
    run(driver.setup())
    part.corrupt_crc(1)
    with pytest.raises(DeviceError, match="sht3x at 0x44: CRC mismatch on the temperature word"):
        run(driver.measure())
    assert run(driver.measure()).rows[0].fields["humidity_pct"] == pytest.approx(45.0, abs=0.01)


def test_sht3x_nack_vanish_and_return(bus, clock, run):
    part = bus.attach(EmulatedSHT3x(0x44, clock=clock))
    clock.advance(0.002)
    driver = SHT3x(bus, 0x44)
    part.nack(None)
    with pytest.raises(OSError) as e:
        run(driver.setup())
    assert e.value.errno == errno.EREMOTEIO
    part.clear_faults()
    run(driver.setup())
    part.vanish()
    with pytest.raises(OSError):
        run(driver.measure())
    part.reappear()
    with pytest.raises(OSError):  # still powering up (1 ms)
        run(driver.setup())
    clock.advance(0.002)
    run(driver.setup())
    assert run(driver.measure()).rows[0].fields["temperature_c"] == pytest.approx(21.0, abs=0.01)


def test_sht3x_stuck_output(bus, clock, run):
    part = bus.attach(EmulatedSHT3x(0x44, clock=clock))
    clock.advance(0.002)
    driver = SHT3x(bus, 0x44)
    run(driver.setup())
    first = run(driver.measure()).raw
    part.stick()
    part.conditions = Conditions(30.0, 70.0)
    assert run(driver.measure()).raw == first
    part.unstick()
    assert run(driver.measure()).raw != first


def test_sht3x_driver_retries_a_nack_while_converting(bus, clock, run):
    part = bus.attach(EmulatedSHT3x(0x44, clock=clock))
    clock.advance(0.002)
    driver = SHT3x(bus, 0x44)
    run(driver.setup())
    part.SINGLE_SHOT = {**part.SINGLE_SHOT, 0x2400: (0.018, False)}  # a slow part
    assert run(driver.measure()).rows[0].fields["temperature_c"] == pytest.approx(21.0, abs=0.01)
    part.SINGLE_SHOT = {**part.SINGLE_SHOT, 0x2400: (0.100, False)}  # far too slow
    with pytest.raises(OSError):
        run(driver.measure())


# -- SHT4x --------------------------------------------------------------------------------
@pytest.mark.parametrize("precision,command,wait", [("high", 0xFD, 0.0083), ("medium", 0xF6, 0.0045),
                                                    ("low", 0xE0, 0.0016)])
def test_sht4x_measures_with_each_precision(bus, clock, run, precision, command, wait):
    part = bus.attach(EmulatedSHT4x(0x46, conditions=Conditions(33.3, 12.5), clock=clock))
    clock.advance(0.002)
    driver = SHT4x(bus, 0x46, repeatability=precision)
    run(driver.setup())
    assert driver.serial == part.serial
    steps = driver.measure()
    assert next(steps) == wait
    steps.close()
    f = run(driver.measure()).rows[0].fields
    assert f["temperature_c"] == pytest.approx(33.3, abs=0.003)
    assert f["humidity_pct"] == pytest.approx(12.5, abs=0.002)
    assert part.MEASURE[command] == wait


def test_sht4x_crops_humidity_as_the_datasheet_says(bus, clock, run):
    part = bus.attach(EmulatedSHT4x(0x44, conditions=Conditions(20.0, -3.0), clock=clock))
    clock.advance(0.002)
    driver = SHT4x(bus, 0x44)
    run(driver.setup())
    assert run(driver.measure()).rows[0].fields["humidity_pct"] == 0.0
    part.conditions = Conditions(20.0, 110.0)
    assert run(driver.measure()).rows[0].fields["humidity_pct"] == 100.0


def test_sht4x_unknown_command_is_nacked(bus, clock):
    bus.attach(EmulatedSHT4x(0x44, clock=clock))
    clock.advance(0.002)
    with pytest.raises(OSError) as e:
        bus.write_byte(0x44, 0x42)
    assert e.value.errno == errno.EREMOTEIO


def test_sht4x_faults(bus, clock, run):
    part = bus.attach(EmulatedSHT4x(0x44, clock=clock))
    clock.advance(0.002)
    driver = SHT4x(bus, 0x44)
    part.corrupt_crc(1)
    with pytest.raises(DeviceError, match="serial high"):
        run(driver.setup())
    run(driver.setup())
    part.corrupt_crc(1)
    with pytest.raises(DeviceError, match="CRC mismatch"):
        run(driver.measure())
    part.nack(1)
    with pytest.raises(OSError):
        run(driver.measure())
    part.vanish()
    with pytest.raises(OSError):
        run(driver.measure())
    part.reappear()
    clock.advance(0.002)
    run(driver.setup())
    first = run(driver.measure()).raw
    part.stick()
    part.conditions = Conditions(0.0, 0.0)
    assert run(driver.measure()).raw == first


def test_sensirion_addresses_are_checked(bus):
    with pytest.raises(ValueError, match="0x44, 0x45"):
        SHT3x(bus, 0x46)
    SHT4x(bus, 0x46)
    with pytest.raises(ValueError):
        SHT4x(bus, 0x44, repeatability="ultra")
