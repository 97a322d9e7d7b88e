"""Models of the Sensirion SHT3x (SHT30/31/35) and SHT4x humidity and temperature sensors.

Both take command bytes (SHT3x: 16-bit commands MSB first; SHT4x: one byte), convert for the
datasheet's maximum duration, and answer a 6-byte read: temperature word, CRC, humidity word,
CRC, each CRC-8 over the two bytes before it (polynomial 0x31, init 0xFF, no reflection, no final
XOR). A read while the conversion is still running is NACKed, as is a read with nothing to send.
"""

from __future__ import annotations

import time
from typing import Callable

from gateway.hardware.emulated.bme280 import Conditions
from gateway.hardware.emulated.device import EmulatedDevice, nack


def sensirion_crc8(data: bytes) -> int:
    crc = 0xFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _word_with_crc(word: int) -> bytes:
    b = bytes([word >> 8, word & 0xFF])
    return b + bytes([sensirion_crc8(b)])


class _Sensirion(EmulatedDevice):
    """What both families share: pending conversion, result buffer, CRC faults, stuck output."""

    def __init__(self, address: int, conditions: Conditions | None, environment,
                 clock: Callable[[], float], serial: int) -> None:
        super().__init__(address, clock)
        self.conditions = conditions or Conditions()
        self.environment = environment
        self.serial = serial
        self.conversions = 0
        self._last_words: tuple[int, int] | None = None
        self.power_on_reset()

    def power_on_reset(self) -> None:
        self.ready_at = self.clock() + self.POWER_UP_S
        self.pending: tuple[float, bool] | None = None  # (done at, stretching)
        self.output = b""

    def acknowledges(self) -> bool:
        return super().acknowledges() and self.clock() >= self.ready_at

    def _start_conversion(self, duration: float, stretch: bool = False) -> None:
        self.pending = (self.clock() + duration, stretch)
        self.output = b""

    def _sample_words(self) -> tuple[int, int]:
        if self.stuck and self._last_words is not None:
            return self._last_words
        cond = self.environment() if self.environment is not None else self.conditions
        words = (self.temperature_word(cond.temperature_c), self.humidity_word(cond.humidity_pct))
        self._last_words = words
        return words

    def _finish(self) -> None:
        self.conversions += 1
        t, rh = self._sample_words()
        self.output = _word_with_crc(t) + _word_with_crc(rh)
        self.pending = None

    def read(self, length: int) -> bytes:
        if self.pending is not None:
            done_at, stretch = self.pending
            if self.clock() < done_at and not stretch:
                raise nack(self.address)
            self._finish()  # with clock stretching the master waits for the result
        if not self.output:
            raise nack(self.address)
        data = bytearray(self.output[:length].ljust(length, b"\xff"))
        if self.take_crc_fault():
            for i in range(2, len(data), 3):
                data[i] ^= 0xFF
        self.output = b""
        return bytes(data)


def _word(value: float) -> int:
    return max(0, min(0xFFFF, round(value)))


class EmulatedSHT3x(_Sensirion):
    """SHT30/SHT31/SHT35 (datasheet: single shot mode, status register, soft reset)."""

    part = "sht3x"
    POWER_UP_S = 0.001
    SOFT_RESET_S = 0.0015
    #: single-shot commands -> max duration in seconds (datasheet table 4), clock stretching
    SINGLE_SHOT = {0x2400: (0.0155, False), 0x240B: (0.0065, False), 0x2416: (0.0045, False),
                   0x2C06: (0.0155, True), 0x2C0D: (0.0065, True), 0x2C10: (0.0045, True)}
    CMD_SOFT_RESET, CMD_READ_STATUS, CMD_CLEAR_STATUS = 0x30A2, 0xF32D, 0x3041
    CMD_HEATER_ON, CMD_HEATER_OFF, CMD_BREAK, CMD_SERIAL = 0x306D, 0x3066, 0x3093, 0x3780

    def __init__(self, address: int = 0x44, conditions: Conditions | None = None, environment=None,
                 clock: Callable[[], float] = time.monotonic, serial: int = 0x1A2B3C4D) -> None:
        if address not in (0x44, 0x45):
            raise ValueError("an SHT3x answers at 0x44 (ADDR low) or 0x45 (ADDR high)")
        super().__init__(address, conditions, environment, clock, serial)

    def power_on_reset(self) -> None:
        super().power_on_reset()
        self.status = 0x8010  # alert pending, system reset detected
        self.heater = False

    def temperature_word(self, celsius: float) -> int:
        return _word((celsius + 45.0) * 65535.0 / 175.0)

    def humidity_word(self, percent: float) -> int:
        return _word(percent * 65535.0 / 100.0)

    def write(self, data: bytes) -> None:
        if len(data) < 2:
            raise nack(self.address)  # the part NACKs an incomplete command
        command = data[0] << 8 | data[1]
        if command in self.SINGLE_SHOT:
            duration, stretch = self.SINGLE_SHOT[command]
            self._start_conversion(duration, stretch)
        elif command == self.CMD_SOFT_RESET:
            self.power_on_reset()
            self.ready_at = self.clock() + self.SOFT_RESET_S
            return
        elif command == self.CMD_READ_STATUS:
            self.output = _word_with_crc(self.status)
        elif command == self.CMD_CLEAR_STATUS:
            self.status &= ~0x8C10 & 0xFFFF  # alert, tracking alerts, reset detected
        elif command in (self.CMD_HEATER_ON, self.CMD_HEATER_OFF):
            self.heater = command == self.CMD_HEATER_ON
            self.status = self.status | 0x2000 if self.heater else self.status & ~0x2000
        elif command == self.CMD_BREAK:
            self.pending = None
        elif command == self.CMD_SERIAL:
            self.output = _word_with_crc(self.serial >> 16) + _word_with_crc(self.serial & 0xFFFF)
        else:
            self.status |= 0x0002  # command status: last command not processed
            return
        self.status &= ~0x0002 & 0xFFFF


class EmulatedSHT4x(_Sensirion):
    """SHT40/SHT41/SHT45 (datasheet section 4: one-byte commands)."""

    part = "sht4x"
    POWER_UP_S = 0.001
    SOFT_RESET_S = 0.001
    MEASURE = {0xFD: 0.0083, 0xF6: 0.0045, 0xE0: 0.0016}
    #: heater commands: heat, then a high-precision measurement (max durations)
    HEATER = {0x39: 1.1, 0x32: 0.11, 0x2F: 1.1, 0x24: 0.11, 0x1E: 1.1, 0x15: 0.11}
    CMD_SERIAL, CMD_SOFT_RESET = 0x89, 0x94

    def __init__(self, address: int = 0x44, conditions: Conditions | None = None, environment=None,
                 clock: Callable[[], float] = time.monotonic, serial: int = 0x0F1E2D3C) -> None:
        if address not in (0x44, 0x45, 0x46):
            raise ValueError("an SHT4x answers at 0x44, 0x45 or 0x46 depending on its variant")
        super().__init__(address, conditions, environment, clock, serial)

    def temperature_word(self, celsius: float) -> int:
        return _word((celsius + 45.0) * 65535.0 / 175.0)

    def humidity_word(self, percent: float) -> int:
        return _word((percent + 6.0) * 65535.0 / 125.0)

    def write(self, data: bytes) -> None:
        if len(data) != 1:
            raise nack(self.address)
        command = data[0]
        if command in self.MEASURE:
            self._start_conversion(self.MEASURE[command])
        elif command in self.HEATER:
            self._start_conversion(self.HEATER[command])
        elif command == self.CMD_SERIAL:
            self.output = _word_with_crc(self.serial >> 16) + _word_with_crc(self.serial & 0xFFFF)
        elif command == self.CMD_SOFT_RESET:
            self.power_on_reset()
            self.ready_at = self.clock() + self.SOFT_RESET_S
        else:
            raise nack(self.address)
