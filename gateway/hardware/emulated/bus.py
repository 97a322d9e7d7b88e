"""An emulated I2C bus with the method set of ``smbus2.SMBus``.

Devices attach at 7-bit addresses and see raw I2C transactions: a write of some bytes, a read of
some bytes, or a write followed by a read under a repeated start (a *combined* transaction).
Each SMBus call is translated into the transactions the kernel's i2c-dev driver would put on the
wire, so a device model answers the same bytes whether a driver uses ``read_i2c_block_data`` or
``i2c_rdwr``. SMBus word transfers are little-endian on the wire (low byte first), exactly as on
Linux, which is why big-endian parts need their bytes swapped by the driver.

A transaction to an address where nothing answers raises ``OSError(errno.EREMOTEIO)``, the error
a Raspberry Pi reports for a NACKed address.
"""

from __future__ import annotations

import copy
import errno
import threading
from typing import Iterable

from gateway.hardware.emulated.device import EmulatedDevice, nack

#: SMBus block transfers carry at most 32 data bytes (I2C_SMBUS_BLOCK_MAX in the kernel).
SMBUS_BLOCK_MAX = 32
_I2C_M_RD = 0x0001


class EmulatedI2CBus:
    """One bus (like ``/dev/i2c-1``) holding device models; thread-safe per transaction."""

    def __init__(self, bus_number: int = 1, devices: Iterable[EmulatedDevice] = ()) -> None:
        self.bus_number = bus_number
        self._devices: dict[int, EmulatedDevice] = {}
        self._lock = threading.RLock()
        self.closed = False
        #: Transactions carried, for tests that check a driver's traffic.
        self.transactions = 0
        for device in devices:
            self.attach(device)

    # -- the rig side -----------------------------------------------------------------
    def attach(self, device: EmulatedDevice) -> EmulatedDevice:
        with self._lock:
            if device.address in self._devices:
                raise ValueError(f"address 0x{device.address:02x} is already taken on bus {self.bus_number}")
            self._devices[device.address] = device
        return device

    def detach(self, address: int) -> EmulatedDevice:
        with self._lock:
            return self._devices.pop(address)

    def device(self, address: int) -> EmulatedDevice:
        return self._devices[address]

    @property
    def addresses(self) -> list[int]:
        return sorted(self._devices)

    # -- raw transactions -------------------------------------------------------------
    def _target(self, address: int) -> EmulatedDevice:
        if self.closed:
            raise OSError(errno.EBADF, "I2C bus is closed")
        if not 0x03 <= address <= 0x77:
            raise OSError(errno.EINVAL, f"invalid 7-bit I2C address 0x{address:02x}")
        device = self._devices.get(address)
        if device is None or not device.acknowledges():
            raise nack(address)
        return device

    def transfer(self, address: int, write: bytes = b"", read: int = 0) -> bytes:
        """A write, a read, or a write then read with repeated start; returns the bytes read."""
        with self._lock:
            self.transactions += 1
            device = self._target(address)
            if write or not read:
                device.on_write(bytes(write))
            if read:
                data = device.on_read(read)
                if len(data) != read:
                    raise AssertionError(f"{type(device).__name__} returned {len(data)} of {read} bytes")
                return data
            return b""

    # -- smbus2.SMBus surface ---------------------------------------------------------
    def write_quick(self, i2c_addr: int, force=None) -> None:
        self.transfer(i2c_addr)

    def read_byte(self, i2c_addr: int, force=None) -> int:
        return self.transfer(i2c_addr, read=1)[0]

    def write_byte(self, i2c_addr: int, value: int, force=None) -> None:
        self.transfer(i2c_addr, bytes([_u8(value)]))

    def read_byte_data(self, i2c_addr: int, register: int, force=None) -> int:
        return self.transfer(i2c_addr, bytes([_u8(register)]), 1)[0]

    def write_byte_data(self, i2c_addr: int, register: int, value: int, force=None) -> None:
        self.transfer(i2c_addr, bytes([_u8(register), _u8(value)]))

    def read_word_data(self, i2c_addr: int, register: int, force=None) -> int:
        lo, hi = self.transfer(i2c_addr, bytes([_u8(register)]), 2)
        return lo | hi << 8

    def write_word_data(self, i2c_addr: int, register: int, value: int, force=None) -> None:
        if not 0 <= value <= 0xFFFF:
            raise ValueError(f"word value out of range: {value}")
        self.transfer(i2c_addr, bytes([_u8(register), value & 0xFF, value >> 8]))

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int, force=None) -> list[int]:
        if not 0 < length <= SMBUS_BLOCK_MAX:
            raise ValueError(f"block length must be 1..{SMBUS_BLOCK_MAX}, got {length}")
        return list(self.transfer(i2c_addr, bytes([_u8(register)]), length))

    def write_i2c_block_data(self, i2c_addr: int, register: int, data, force=None) -> None:
        data = bytes(data)
        if len(data) > SMBUS_BLOCK_MAX:
            raise ValueError(f"block length must be at most {SMBUS_BLOCK_MAX}, got {len(data)}")
        self.transfer(i2c_addr, bytes([_u8(register)]) + data)

    def i2c_rdwr(self, *messages) -> None:
        """Runs ``smbus2.i2c_msg`` messages; a write followed by a read to the same address is one
        combined transaction, as the kernel sends it with a repeated start."""
        with self._lock:
            i = 0
            while i < len(messages):
                msg = messages[i]
                if msg.flags & _I2C_M_RD:
                    self._fill(msg, self.transfer(msg.addr, read=msg.len))
                    i += 1
                    continue
                nxt = messages[i + 1] if i + 1 < len(messages) else None
                if nxt is not None and nxt.flags & _I2C_M_RD and nxt.addr == msg.addr:
                    self._fill(nxt, self.transfer(msg.addr, bytes(msg), nxt.len))
                    i += 2
                else:
                    self.transfer(msg.addr, bytes(msg))
                    i += 1

    @staticmethod
    def _fill(msg, data: bytes) -> None:
        for k, b in enumerate(data):
            msg.buf[k] = bytes([b])

    def handle(self) -> "EmulatedI2CBus":
        """A new open handle on the same wire and devices (what opening ``/dev/i2c-N`` again gives)."""
        other = copy.copy(self)
        other.closed = False
        return other

    def close(self) -> None:
        """Closes this handle; the devices stay on the wire. Safe to call twice."""
        self.closed = True

    def __enter__(self) -> "EmulatedI2CBus":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _u8(value: int) -> int:
    if not 0 <= value <= 0xFF:
        raise ValueError(f"byte value out of range: {value}")
    return value
