"""BME280 driver against the datasheet and the register-level model."""

import errno
import math

import pytest

from gateway.errors import DeviceError
from gateway.hardware.emulated import bme280 as model
from gateway.hardware.emulated.bme280 import Conditions, EmulatedBME280
from gateway.readers.i2c import bme280
from gateway.readers.i2c.bme280 import BME280, Calibration

# The worked example of the Bosch compensation (BMP280 datasheet section 3.12; the BME280 uses
# the same temperature and pressure formulas): trimming words, raw values, results.
EXAMPLE = Calibration(T1=27504, T2=26435, T3=-1000, P1=36477, P2=-10685, P3=3024, P4=2855,
                      P5=140, P6=-7, P7=15500, P8=-14600, P9=6000,
                      H1=75, H2=362, H3=0, H4=313, H5=50, H6=30)
ADC_T, ADC_P = 519888, 415148


def test_datasheet_example_integer_formulas():
    t, t_fine = bme280.compensate_temperature_int32(EXAMPLE, ADC_T)
    assert t_fine == 128422
    assert t == 2508  # 25.08 °C
    p = bme280.compensate_pressure_int64(EXAMPLE, ADC_P, t_fine)
    assert p == 25767233  # Q24.8: 100653.25 Pa
    assert p / 256 == 100653.25390625


def test_datasheet_example_double_formulas():
    t, t_fine = bme280.compensate_temperature_double(EXAMPLE, ADC_T)
    assert round(t, 2) == 25.08
    assert t_fine == 128422
    # The datasheet's table carries t_fine unrounded (var1 + var2) into the pressure step.
    assert round(bme280.compensate_pressure_double(EXAMPLE, ADC_P, t * 5120.0), 2) == 100653.27
    # The code as printed truncates t_fine to an integer first.
    assert round(bme280.compensate_pressure_double(EXAMPLE, ADC_P, t_fine), 2) == 100653.26


def test_integer_pressure_guards_the_division_by_zero():
    zero = Calibration(**{**vars(EXAMPLE), "P1": 0})
    assert bme280.compensate_pressure_int64(zero, ADC_P, 128422) == 0
    assert bme280.compensate_pressure_double(zero, ADC_P, 128422) == 0.0


def test_humidity_integer_and_double_agree_and_clamp():
    _, t_fine = bme280.compensate_temperature_int32(EXAMPLE, ADC_T)
    for adc_h in (20000, 27000, 30000, 36000):
        q = bme280.compensate_humidity_int32(EXAMPLE, adc_h, t_fine) / 1024
        d = bme280.compensate_humidity_double(EXAMPLE, adc_h, t_fine)
        assert abs(q - d) < 0.01
    assert bme280.compensate_humidity_int32(EXAMPLE, 0, t_fine) == 0
    assert bme280.compensate_humidity_int32(EXAMPLE, 0xFFFF, t_fine) == 100 * 1024
    assert bme280.compensate_humidity_double(EXAMPLE, 0xFFFF, t_fine) == 100.0


def test_c_semantics_of_the_integer_helpers():
    assert bme280._c_div(-7, 2) == -3 and bme280._c_div(7, -2) == -3 and bme280._c_div(7, 2) == 3
    assert bme280._s32(0x80000000) == -(1 << 31)
    assert bme280._s64((1 << 64) - 1) == -1


def test_calibration_h4_h5_share_a_nibble_register():
    # 0xE4 = 0x14, 0xE5 = 0x2D (H5[3:0]=2, H4[3:0]=0xD), 0xE6 = 0x03.
    block_b = bytes([0x6A, 0x01, 0x00, 0x14, 0x2D, 0x03, 0x1E])
    block_a = bytes(25) + bytes([75])
    c = Calibration.from_nvm(block_a, block_b)
    assert (c.H2, c.H3, c.H4, c.H5, c.H6) == (362, 0, 0x14D, 0x032, 30)
    # Negative 12-bit values take their sign from the upper byte.
    block_b = bytes([0x00, 0x80, 0xFF, 0xEA, 0x9F, 0xF0, 0xF6])
    c = Calibration.from_nvm(block_a, block_b)
    assert (c.H2, c.H3, c.H4, c.H5, c.H6) == (-32768, 255, -337, -247, -10)


@pytest.mark.parametrize("h4,h5", [(313, 50), (-337, -247), (2047, -2048), (0, 1)])
def test_model_nvm_round_trips_through_the_driver(bus, clock, h4, h5, run):
    cal = model.Calibration(**{**vars(model.TYPICAL_CALIBRATION), "H4": h4, "H5": h5})
    bus.attach(EmulatedBME280(0x77, calibration=cal, clock=clock))
    driver = BME280(bus, 0x77)
    run(driver.setup())
    assert vars(driver.calibration) == vars(cal)


def test_register_path_reproduces_the_worked_example(bus, clock, run):
    part = bus.attach(EmulatedBME280(0x76, calibration=model.Calibration(**vars(EXAMPLE)), clock=clock))
    driver = BME280(bus, 0x76)
    run(driver.setup())
    # Data registers as the part presents the example's raw values; stuck keeps them there.
    part.regs[0xF7:0xFF] = bytes([0x65, 0x5A, 0xC0, 0x7E, 0xED, 0x00, 0x6F, 0xF0])
    part.stick()
    reading = run(driver.measure())
    assert reading.raw == (ADC_T, ADC_P, 0x6FF0)
    fields = reading.rows[0].fields
    assert fields["temperature_c"] == 25.08
    assert fields["pressure_pa"] == 100653.25390625


CASES = [Conditions(-39.5, 2.0, 30500.0), Conditions(-10.0, 90.0, 85000.0),
         Conditions(0.0, 50.0, 100000.0), Conditions(21.37, 45.6, 101325.0),
         Conditions(40.0, 20.0, 95000.0), Conditions(84.5, 98.0, 109500.0)]


@pytest.mark.parametrize("conditions", CASES, ids=lambda c: f"{c.temperature_c}C")
@pytest.mark.parametrize("compensation", ["integer", "double"])
def test_model_inverse_and_driver_agree(bus, clock, conditions, compensation, run):
    bus.attach(EmulatedBME280(0x76, conditions=conditions, clock=clock))
    driver = BME280(bus, 0x76, oversampling=16, compensation=compensation)
    run(driver.setup())
    f = run(driver.measure()).rows[0].fields
    assert f["temperature_c"] == pytest.approx(conditions.temperature_c, abs=0.011)
    assert f["pressure_pa"] == pytest.approx(conditions.pressure_pa, abs=0.5)
    assert f["humidity_pct"] == pytest.approx(conditions.humidity_pct, abs=0.02)


def test_oversampling_x1_reads_16_bit_codes(bus, clock, run):
    bus.attach(EmulatedBME280(0x76, conditions=Conditions(21.37, 45.6, 101325.0), clock=clock))
    driver = BME280(bus, 0x76, oversampling=1)
    run(driver.setup())
    reading = run(driver.measure())
    adc_t, adc_p, _ = reading.raw
    assert adc_t & 0xF == 0 and adc_p & 0xF == 0
    f = reading.rows[0].fields
    assert f["temperature_c"] == pytest.approx(21.37, abs=0.02)
    assert f["pressure_pa"] == pytest.approx(101325.0, abs=3.0)  # 16-bit step is about 2.6 Pa


def test_forced_mode_timing_status_and_sleep(bus, clock):
    part = bus.attach(EmulatedBME280(0x76, conditions=Conditions(25.0, 40.0, 100000.0), clock=clock))
    clock.advance(0.01)
    assert bus.read_byte_data(0x76, 0xF3) == 0  # idle, NVM copied
    bus.write_byte_data(0x76, 0xF2, 0x01)
    bus.write_byte_data(0x76, 0xF4, 0b001_001_01)
    expected = bme280.measurement_time_s(1, 1, 1)
    assert expected == pytest.approx(0.0093)
    assert part.measurement_time_s() == pytest.approx(expected)
    assert bus.read_byte_data(0x76, 0xF3) & 0x08  # measuring
    # Until the conversion ends the data registers keep their reset value.
    assert bus.read_i2c_block_data(0x76, 0xF7, 3) == [0x80, 0x00, 0x00]
    clock.advance(expected)
    assert bus.read_byte_data(0x76, 0xF3) & 0x08 == 0
    assert bus.read_byte_data(0x76, 0xF4) & 0x03 == 0  # back to sleep mode
    assert bus.read_i2c_block_data(0x76, 0xF7, 3) != [0x80, 0x00, 0x00]


def test_ctrl_hum_applies_only_after_ctrl_meas(bus, clock):
    bus.attach(EmulatedBME280(0x76, clock=clock))
    clock.advance(0.01)
    bus.write_byte_data(0x76, 0xF4, 0b001_001_01)  # humidity oversampling still 0: skipped
    clock.advance(0.02)
    assert bus.read_i2c_block_data(0x76, 0xFD, 2) == [0x80, 0x00]
    bus.write_byte_data(0x76, 0xF2, 0x01)
    clock.advance(0.02)
    bus.write_byte_data(0x76, 0xF4, 0b001_001_01)
    clock.advance(0.02)
    assert bus.read_i2c_block_data(0x76, 0xFD, 2) != [0x80, 0x00]


def test_driver_waits_for_a_slow_conversion(bus, clock, run):
    part = bus.attach(EmulatedBME280(0x76, clock=clock))
    driver = BME280(bus, 0x76)
    run(driver.setup())
    slower = part.measurement_time_s
    part.measurement_time_s = lambda: slower() + 0.004  # 4 ms beyond the datasheet maximum
    steps = driver.measure()
    waits = []
    try:
        wait = next(steps)
        while True:
            waits.append(wait)
            clock.advance(wait)
            wait = steps.send(None)
    except StopIteration as done:
        reading = done.value
    assert len(waits) >= 4  # the maximum time, then 1 ms polls of the measuring bit
    assert reading.rows[0].fields["temperature_c"] == pytest.approx(21.0, abs=0.02)


def test_wrong_chip_id_is_named(bus, clock, run):
    part = bus.attach(EmulatedBME280(0x76, clock=clock))
    part.wrong_chip_id(0x58)
    with pytest.raises(DeviceError, match=r"bme280 at 0x76: chip id 0x58 \(that is a BMP280\), expected 0x60"):
        run(BME280(bus, 0x76).setup())


def test_nack_and_vanish_are_eremoteio(bus, clock, run):
    part = bus.attach(EmulatedBME280(0x76, clock=clock))
    driver = BME280(bus, 0x76)
    part.nack(1)
    with pytest.raises(OSError) as e:
        run(driver.setup())
    assert e.value.errno == errno.EREMOTEIO
    run(driver.setup())
    part.vanish()
    with pytest.raises(OSError) as e:
        run(driver.measure())
    assert e.value.errno == errno.EREMOTEIO


def test_part_reset_behind_our_back_is_detected(bus, clock, run):
    part = bus.attach(EmulatedBME280(0x76, clock=clock))
    driver = BME280(bus, 0x76)
    run(driver.setup())
    run(driver.measure())
    part.vanish()
    part.reappear()  # power cycle: ctrl_hum back to 0, so humidity is skipped
    with pytest.raises(DeviceError, match="reset value"):
        run(driver.measure())
    run(driver.setup())
    assert run(driver.measure()).rows[0].fields["humidity_pct"] == pytest.approx(45.0, abs=0.1)


def test_stuck_part_repeats_its_raw_values(bus, clock, run):
    part = bus.attach(EmulatedBME280(0x76, clock=clock))
    driver = BME280(bus, 0x76)
    run(driver.setup())
    first = run(driver.measure()).raw
    part.stick()
    part.conditions = Conditions(30.0, 60.0, 99000.0)
    assert run(driver.measure()).raw == first
    part.unstick()
    assert run(driver.measure()).raw != first


def test_blank_nvm_is_refused(bus, clock, run):
    part = bus.attach(EmulatedBME280(0x76, clock=clock))
    part.regs[0x88:0xA2] = bytes(26)
    part.calibration = model.Calibration(*([1] * 18))  # keep reset from restoring the NVM
    part.power_on_reset = lambda: None
    with pytest.raises(DeviceError, match="blank"):
        run(BME280(bus, 0x76).setup())


def test_driver_options_are_checked(bus):
    with pytest.raises(ValueError, match="0x76, 0x77"):
        BME280(bus, 0x44)
    with pytest.raises(ValueError, match="oversampling"):
        BME280(bus, 0x76, oversampling=3)
    with pytest.raises(ValueError, match="compensation"):
        BME280(bus, 0x76, compensation="float")


def test_inverse_is_monotonic_over_the_range():
    c = model.TYPICAL_CALIBRATION
    codes = [model.raw_temperature(c, t)[0] for t in range(-40, 86, 5)]
    assert codes == sorted(codes)
    assert not math.isnan(model.raw_pressure(c, 128422, 50000.0))
