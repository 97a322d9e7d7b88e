"""Register-level model of the TI ADS1115 16-bit ADC (datasheet SBAS444, section 8.6).

A pointer byte selects one of four 16-bit registers (0 conversion, 1 config, 2 Lo_thresh,
3 Hi_thresh); registers travel MSB first. Config bits: OS[15] (write 1 starts a single-shot
conversion; reads 0 while converting), MUX[14:12], PGA[11:9], MODE[8] (1 single-shot), DR[7:5],
comparator bits [4:0]; reset value 0x8583. A conversion takes one data-rate period, stretched by
the internal oscillator's error (within the datasheet's ±10 %). The result is two's complement
with 1 LSB = FSR / 2^15, clipped to 0x8000..0x7FFF. The comparator and ALERT/RDY pin are not
modelled.
"""

from __future__ import annotations

import time
from typing import Callable

from gateway.hardware.emulated.device import EmulatedDevice

REG_CONVERSION, REG_CONFIG, REG_LO_THRESH, REG_HI_THRESH = 0, 1, 2, 3
CONFIG_RESET = 0x8583
FULL_SCALE_V = (6.144, 4.096, 2.048, 1.024, 0.512, 0.256, 0.256, 0.256)
DATA_RATES = (8, 16, 32, 64, 128, 250, 475, 860)
#: MUX code -> (positive input, negative input); None is GND
MUX_INPUTS = ((0, 1), (0, 3), (1, 3), (2, 3), (0, None), (1, None), (2, None), (3, None))


class EmulatedADS1115(EmulatedDevice):
    part = "ads1115"

    def __init__(self, address: int = 0x48, voltages=(0.0, 0.0, 0.0, 0.0),
                 clock: Callable[[], float] = time.monotonic, oscillator_error: float = 0.05) -> None:
        if address not in (0x48, 0x49, 0x4A, 0x4B):
            raise ValueError("an ADS1115 answers at 0x48..0x4B (ADDR to GND, VDD, SDA or SCL)")
        super().__init__(address, clock)
        #: Input voltages at AIN0..AIN3 relative to GND.
        self.voltages = list(voltages)
        self.oscillator_error = oscillator_error
        self.conversions = 0
        self.power_on_reset()

    def power_on_reset(self) -> None:
        self.pointer = REG_CONVERSION
        self.regs = [0x0000, CONFIG_RESET & 0x7FFF, 0x8000, 0x7FFF]
        self.converting_until: float | None = None
        self.next_continuous: float | None = None

    def conversion_time_s(self, config: int | None = None) -> float:
        config = self.regs[REG_CONFIG] if config is None else config
        return (1.0 + self.oscillator_error) / DATA_RATES[(config >> 5) & 7]

    def _code(self) -> int:
        config = self.regs[REG_CONFIG]
        pos, neg = MUX_INPUTS[(config >> 12) & 7]
        volts = self.voltages[pos] - (self.voltages[neg] if neg is not None else 0.0)
        fsr = FULL_SCALE_V[(config >> 9) & 7]
        code = int(volts * 32768.0 / fsr)
        return max(-32768, min(32767, code)) & 0xFFFF

    def _complete(self) -> None:
        self.conversions += 1
        if not self.stuck:
            self.regs[REG_CONVERSION] = self._code()

    def _advance(self) -> None:
        now = self.clock()
        if self.converting_until is not None and now >= self.converting_until:
            self._complete()
            self.converting_until = None
        if not self.regs[REG_CONFIG] & 0x0100:  # continuous mode
            period = self.conversion_time_s()
            while self.next_continuous is not None and now >= self.next_continuous:
                self._complete()
                self.next_continuous += period

    def write(self, data: bytes) -> None:
        if not data:
            return
        self._advance()
        self.pointer = data[0] & 3
        if len(data) >= 3 and self.pointer != REG_CONVERSION:
            value = data[1] << 8 | data[2]
            if self.pointer == REG_CONFIG:
                start = bool(value & 0x8000) and bool(value & 0x0100) and self.converting_until is None
                self.regs[REG_CONFIG] = value & 0x7FFF
                if start:
                    self.converting_until = self.clock() + self.conversion_time_s()
                if not value & 0x0100:  # continuous mode: conversions run from now on
                    self.next_continuous = self.clock() + self.conversion_time_s()
            else:
                self.regs[self.pointer] = value

    def read(self, length: int) -> bytes:
        self._advance()
        value = self.regs[self.pointer]
        if self.pointer == REG_CONFIG:
            idle = self.converting_until is None
            value |= 0x8000 if idle else 0
        word = bytes([value >> 8, value & 0xFF])
        return (word * ((length + 1) // 2))[:length]
