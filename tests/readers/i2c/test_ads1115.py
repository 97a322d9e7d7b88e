"""ADS1115 driver: big-endian registers, gain, data rate, single-shot OS bit, faults."""

import errno

import pytest

from gateway.errors import DeviceError
from gateway.hardware.emulated import EmulatedADS1115, EmulatedDevice
from gateway.readers.i2c.ads1115 import ADS1115, Channel, swap_bytes, to_signed


def test_read_word_data_needs_its_bytes_swapped(bus, clock):
    bus.attach(EmulatedADS1115(0x48, clock=clock))
    # Config resets to 0x8583, sent MSB first; SMBus assembles the word LSB first.
    assert bus.read_word_data(0x48, 0x01) == 0x8385
    assert swap_bytes(bus.read_word_data(0x48, 0x01)) == 0x8583
    assert bus.read_i2c_block_data(0x48, 0x02, 2) == [0x80, 0x00]  # Lo_thresh reset
    assert bus.read_i2c_block_data(0x48, 0x03, 2) == [0x7F, 0xFF]  # Hi_thresh reset


def test_two_complement():
    assert to_signed(0x7FFF) == 32767
    assert to_signed(0x8000) == -32768
    assert to_signed(0xFFFF) == -1


def test_config_word_layout():
    ch = Channel(2, "x", full_scale_v=0.512, data_rate=860)
    # OS=1, MUX=110 (AIN2/GND), PGA=100, MODE=1, DR=111, comparator disabled (11)
    assert ch.config_word() == 0b1_110_100_1_111_00011


def test_single_shot_timing_and_os_bit(bus, clock):
    part = bus.attach(EmulatedADS1115(0x48, voltages=[1.0, 0, 0, 0], clock=clock, oscillator_error=0.0))
    config = Channel(0, "a", 4.096, 8).config_word()
    bus.write_i2c_block_data(0x48, 0x01, [config >> 8, config & 0xFF])
    assert swap_bytes(bus.read_word_data(0x48, 0x01)) & 0x8000 == 0  # converting
    clock.advance(0.124)
    assert swap_bytes(bus.read_word_data(0x48, 0x01)) & 0x8000 == 0
    clock.advance(0.001)  # 1/8 s
    assert swap_bytes(bus.read_word_data(0x48, 0x01)) & 0x8000
    assert to_signed(swap_bytes(bus.read_word_data(0x48, 0x00))) == 8000  # 1 V / 125 uV
    assert part.conversions == 1


@pytest.mark.parametrize("fsr", [6.144, 4.096, 2.048, 1.024, 0.512, 0.256])
def test_each_gain(bus, clock, run, fsr):
    volts = fsr * 0.61
    bus.attach(EmulatedADS1115(0x49, voltages=[volts, 0, 0, 0], clock=clock))
    driver = ADS1115(bus, 0x49, [Channel(0, "a", fsr, 860)])
    run(driver.setup())
    reading = run(driver.measure())
    lsb = fsr / 32768
    assert reading.rows[0].fields["voltage_v"] == pytest.approx(volts, abs=lsb)
    assert reading.raw == (int(volts / lsb),)


def test_four_channels_each_with_its_own_settings(bus, clock, run):
    bus.attach(EmulatedADS1115(0x4A, voltages=[0.1, 1.5, 3.0, 0.0], clock=clock))
    channels = [Channel(0, "low", 0.256, 8), Channel(1, "mid", 2.048, 128),
                Channel(2, "high", 4.096, 475, scale=2.0, offset=-1.0, scaled=True),
                Channel(3, "zero", 6.144, 860)]
    driver = ADS1115(bus, 0x4A, channels)
    run(driver.setup())
    steps = driver.measure()
    first_wait = next(steps)
    steps.close()
    assert first_wait == pytest.approx(1.1 / 8)
    reading = run(driver.measure())
    by_name = {row.tags["channel"]: row.fields for row in reading.rows}
    assert by_name["low"]["voltage_v"] == pytest.approx(0.1, abs=0.256 / 32768)
    assert by_name["mid"]["voltage_v"] == pytest.approx(1.5, abs=2.048 / 32768)
    assert by_name["high"]["voltage_v"] == pytest.approx(3.0, abs=4.096 / 32768)
    assert by_name["high"]["value"] == pytest.approx(5.0, abs=0.001)
    assert by_name["zero"] == {"voltage_v": 0.0}


def test_driver_polls_a_slow_oscillator(bus, clock, run):
    bus.attach(EmulatedADS1115(0x48, voltages=[2.0, 0, 0, 0], clock=clock, oscillator_error=0.15))
    driver = ADS1115(bus, 0x48, [Channel(0, "a", 4.096, 128)])
    run(driver.setup())
    assert run(driver.measure()).rows[0].fields["voltage_v"] == pytest.approx(2.0, abs=0.001)


def test_clipped_input_reads_full_scale_outside_the_accepted_range(bus, clock, run):
    bus.attach(EmulatedADS1115(0x48, voltages=[3.3, 0, 0, 0], clock=clock))
    driver = ADS1115(bus, 0x48, [Channel(0, "a", 2.048, 860)])
    run(driver.setup())
    reading = run(driver.measure())
    assert reading.raw == (32767,)
    lo, hi = reading.rows[0].ranges["voltage_v"]
    assert not lo <= reading.rows[0].fields["voltage_v"] <= hi


def test_faults(bus, clock, run):
    part = bus.attach(EmulatedADS1115(0x48, voltages=[1.0, 0, 0, 0], clock=clock))
    driver = ADS1115(bus, 0x48, [Channel(0, "a", 4.096, 860)])
    part.nack(1)
    with pytest.raises(OSError) as e:
        run(driver.setup())
    assert e.value.errno == errno.EREMOTEIO
    run(driver.setup())
    first = run(driver.measure()).raw
    part.stick()
    part.voltages[0] = 2.0
    assert run(driver.measure()).raw == first
    part.unstick()
    assert run(driver.measure()).raw != first
    part.vanish()
    with pytest.raises(OSError):
        run(driver.measure())
    part.reappear()
    run(driver.setup())
    assert run(driver.measure()).rows[0].fields["voltage_v"] == pytest.approx(2.0, abs=0.001)


class NotAnADC(EmulatedDevice):
    """Something else at 0x48 (a temperature sensor, say) that ignores the config write."""

    def write(self, data):
        pass

    def read(self, length):
        return b"\x12\x34"[:length]


def test_something_else_at_the_address_is_refused(bus, clock, run):
    bus.attach(NotAnADC(0x48, clock=clock))
    with pytest.raises(DeviceError, match=r"ads1115 at 0x48: config register reads back 0x1234"):
        run(ADS1115(bus, 0x48, [Channel(0, "a")]).setup())


def test_conversion_that_never_ends(bus, clock, run):
    bus.attach(EmulatedADS1115(0x48, clock=clock, oscillator_error=10.0))
    driver = ADS1115(bus, 0x48, [Channel(0, "a", 4.096, 8)])
    run(driver.setup())
    with pytest.raises(DeviceError, match="conversion of AIN0 did not finish in time"):
        run(driver.measure())


def test_continuous_mode_model(bus, clock):
    part = bus.attach(EmulatedADS1115(0x48, voltages=[0.5, 0, 0, 0], clock=clock, oscillator_error=0.0))
    config = Channel(0, "a", 4.096, 128).config_word() & ~0x0100  # MODE=0
    bus.write_i2c_block_data(0x48, 0x01, [config >> 8, config & 0xFF])
    clock.advance(3.5 / 128)
    assert part.conversions == 0  # lazily counted at the next access
    assert to_signed(swap_bytes(bus.read_word_data(0x48, 0x00))) == 4000
    assert part.conversions == 3


def test_channel_options_are_checked(bus):
    with pytest.raises(ValueError, match="full_scale_v"):
        ADS1115(bus, 0x48, [Channel(0, "a", 3.3)])
    with pytest.raises(ValueError, match="data_rate"):
        ADS1115(bus, 0x48, [Channel(0, "a", 4.096, 100)])
    with pytest.raises(ValueError, match="input"):
        ADS1115(bus, 0x48, [Channel(4, "a")])
