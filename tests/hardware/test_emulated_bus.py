"""The emulated bus speaks SMBus like Linux i2c-dev, and its faults look like real ones."""

import errno

import pytest
from smbus2 import i2c_msg

from gateway.hardware.emulated import (EmulatedADS1115, EmulatedBME280, EmulatedDevice,
                                       EmulatedI2CBus, EmulatedSHT3x)


class Recorder(EmulatedDevice):
    """Records the raw transactions it sees and answers a counting byte sequence."""

    def __init__(self, address=0x20):
        super().__init__(address)
        self.log = []

    def write(self, data):
        self.log.append(("w", data))

    def read(self, length):
        self.log.append(("r", length))
        return bytes(range(0xA0, 0xA0 + length))


@pytest.fixture
def bus():
    b = EmulatedI2CBus(1)
    b.attach(Recorder())
    return b


def test_smbus_calls_become_the_wire_transactions(bus):
    dev = bus.device(0x20)
    assert bus.read_byte_data(0x20, 0x10) == 0xA0
    bus.write_byte_data(0x20, 0x11, 0x22)
    bus.write_i2c_block_data(0x20, 0x12, [1, 2, 3])
    assert bus.read_i2c_block_data(0x20, 0x13, 3) == [0xA0, 0xA1, 0xA2]
    bus.write_byte(0x20, 0x99)
    assert bus.read_byte(0x20) == 0xA0
    assert dev.log == [("w", b"\x10"), ("r", 1), ("w", b"\x11\x22"), ("w", b"\x12\x01\x02\x03"),
                       ("w", b"\x13"), ("r", 3), ("w", b"\x99"), ("r", 1)]


def test_word_transfers_are_little_endian_like_linux(bus):
    # The part sends 0xA0 then 0xA1: SMBus reads that as the word 0xA1A0 (low byte first).
    assert bus.read_word_data(0x20, 0x00) == 0xA1A0
    bus.write_word_data(0x20, 0x01, 0x1234)
    assert bus.device(0x20).log[-1] == ("w", b"\x01\x34\x12")


def test_i2c_rdwr_combined_and_plain(bus):
    write, read = i2c_msg.write(0x20, [0x05]), i2c_msg.read(0x20, 4)
    bus.i2c_rdwr(write, read)
    assert list(read) == [0xA0, 0xA1, 0xA2, 0xA3]
    lone = i2c_msg.read(0x20, 2)
    bus.i2c_rdwr(lone)
    assert bytes(lone) == b"\xa0\xa1"
    assert bus.device(0x20).log == [("w", b"\x05"), ("r", 4), ("r", 2)]


def test_absent_address_is_eremoteio(bus):
    with pytest.raises(OSError) as e:
        bus.read_byte_data(0x21, 0)
    assert e.value.errno == errno.EREMOTEIO


def test_injected_nacks_then_recovery(bus):
    dev = bus.device(0x20)
    dev.nack(2)
    for _ in range(2):
        with pytest.raises(OSError) as e:
            bus.read_byte(0x20)
        assert e.value.errno == errno.EREMOTEIO
    assert bus.read_byte(0x20) == 0xA0
    dev.nack(None)
    for _ in range(5):
        with pytest.raises(OSError):
            bus.read_byte(0x20)
    dev.clear_faults()
    assert bus.read_byte(0x20) == 0xA0


def test_vanish_and_return(bus):
    dev = bus.device(0x20)
    dev.vanish()
    with pytest.raises(OSError) as e:
        bus.write_byte(0x20, 1)
    assert e.value.errno == errno.EREMOTEIO
    dev.reappear()
    bus.write_byte(0x20, 1)


def test_address_conflicts_and_bad_values(bus):
    with pytest.raises(ValueError, match="already taken"):
        bus.attach(Recorder(0x20))
    with pytest.raises(ValueError):
        bus.write_byte_data(0x20, 0x100, 0)
    with pytest.raises(ValueError):
        bus.read_i2c_block_data(0x20, 0, 33)
    with pytest.raises(OSError) as e:
        bus.read_byte(0x80)
    assert e.value.errno == errno.EINVAL


def test_parts_reject_addresses_they_cannot_have():
    with pytest.raises(ValueError, match="0x76"):
        EmulatedBME280(0x44)
    with pytest.raises(ValueError, match="0x44"):
        EmulatedSHT3x(0x46)
    with pytest.raises(ValueError, match="0x48"):
        EmulatedADS1115(0x50)
