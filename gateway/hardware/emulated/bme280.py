"""Register-level model of the Bosch BME280 (temperature, humidity, pressure) on I2C.

Memory map (datasheet section 5.3): calibration NVM at 0x88..0xA1 and 0xE1..0xE7, ``id`` 0xD0
(0x60), ``reset`` 0xE0 (0xB6 resets), ``ctrl_hum`` 0xF2, ``status`` 0xF3 (bit 3 measuring, bit 0
im_update), ``ctrl_meas`` 0xF4 (osrs_t[7:5] osrs_p[4:2] mode[1:0]), ``config`` 0xF5, and the data
registers 0xF7..0xFE (press msb/lsb/xlsb, temp msb/lsb/xlsb, hum msb/lsb). Reads auto-increment;
writes are (register, value) pairs. A ``ctrl_hum`` change takes effect at the next ``ctrl_meas``
write, as on the part.

The raw ADC values for a chosen physical temperature, humidity and pressure come from the
closed-form inverse of the datasheet's double-precision compensation (appendix 8.1): temperature
is a quadratic in the ADC value, pressure a quadratic in the linearised pressure, humidity a
quadratic in the uncorrected humidity. Conversions take the datasheet's maximum measurement time
(section 9.1), and a skipped measurement (oversampling 0) reads 0x80000 / 0x8000.
"""

from __future__ import annotations

import math
import struct
import time
from dataclasses import dataclass
from typing import Callable

from gateway.hardware.emulated.device import EmulatedDevice

CHIP_ID = 0x60
REG_CALIB_A, REG_CALIB_B = 0x88, 0xE1
REG_ID, REG_RESET, REG_CTRL_HUM, REG_STATUS = 0xD0, 0xE0, 0xF2, 0xF3
REG_CTRL_MEAS, REG_CONFIG, REG_DATA = 0xF4, 0xF5, 0xF7
RESET_WORD = 0xB6
OVERSAMPLING = (0, 1, 2, 4, 8, 16, 16, 16)  # osrs field -> samples (0 = skipped)
STANDBY_MS = (0.5, 62.5, 125.0, 250.0, 500.0, 1000.0, 10.0, 20.0)
STARTUP_S = 0.002  # NVM copy after power-on or soft reset (datasheet: start-up time 2 ms)


@dataclass(frozen=True)
class Calibration:
    """The trimming words (datasheet table 16)."""

    T1: int; T2: int; T3: int
    P1: int; P2: int; P3: int; P4: int; P5: int; P6: int; P7: int; P8: int; P9: int
    H1: int; H2: int; H3: int; H4: int; H5: int; H6: int

    def nvm(self) -> tuple[bytes, bytes]:
        """The bytes of 0x88..0xA1 (26) and 0xE1..0xE7 (7), with H4/H5 split across 0xE5."""
        if not -2048 <= self.H4 <= 2047 or not -2048 <= self.H5 <= 2047:
            raise ValueError("H4 and H5 are 12-bit signed values")
        a = struct.pack("<HhhHhhhhhhhh", self.T1, self.T2, self.T3, self.P1, self.P2, self.P3,
                        self.P4, self.P5, self.P6, self.P7, self.P8, self.P9) + bytes([0, self.H1])
        h4, h5 = self.H4 & 0xFFF, self.H5 & 0xFFF
        b = struct.pack("<hB", self.H2, self.H3) + bytes([h4 >> 4, (h5 & 0xF) << 4 | (h4 & 0xF), h5 >> 4]) \
            + struct.pack("<b", self.H6)
        return a, b


#: Trimming of a real part: the temperature and pressure words are the datasheet's worked example,
#: the humidity words typical of production parts.
TYPICAL_CALIBRATION = Calibration(
    T1=27504, T2=26435, T3=-1000,
    P1=36477, P2=-10685, P3=3024, P4=2855, P5=140, P6=-7, P7=15500, P8=-14600, P9=6000,
    H1=75, H2=362, H3=0, H4=313, H5=50, H6=30)


@dataclass
class Conditions:
    """What the part senses."""

    temperature_c: float = 21.0
    humidity_pct: float = 45.0
    pressure_pa: float = 101325.0


class EmulatedBME280(EmulatedDevice):
    part = "bme280"

    def __init__(self, address: int = 0x76, calibration: Calibration = TYPICAL_CALIBRATION,
                 conditions: Conditions | None = None,
                 environment: Callable[[], Conditions] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if address not in (0x76, 0x77):
            raise ValueError("a BME280 answers at 0x76 (SDO to GND) or 0x77 (SDO to VDDIO)")
        super().__init__(address, clock)
        self.calibration = calibration
        self.conditions = conditions or Conditions()
        #: If set, called at each conversion for the conditions (a drifting environment).
        self.environment = environment
        self.conversions = 0
        self.power_on_reset()

    # -- state ------------------------------------------------------------------------
    def power_on_reset(self) -> None:
        self.regs = bytearray(256)
        calib_a, calib_b = self.calibration.nvm()
        self.regs[REG_CALIB_A:REG_CALIB_A + len(calib_a)] = calib_a
        self.regs[REG_CALIB_B:REG_CALIB_B + len(calib_b)] = calib_b
        self.regs[REG_ID] = CHIP_ID
        self.regs[REG_DATA:REG_DATA + 8] = bytes([0x80, 0, 0, 0x80, 0, 0, 0x80, 0])
        self.pointer = 0
        self.osrs_h_active = 0
        self.measurement_end: float | None = None
        self.next_cycle: float | None = None
        self.nvm_ready_at = self.clock() + STARTUP_S

    def measurement_time_s(self) -> float:
        """Maximum measurement time for the current settings (datasheet section 9.1)."""
        meas = self.regs[REG_CTRL_MEAS]
        osrs_t, osrs_p = OVERSAMPLING[meas >> 5], OVERSAMPLING[(meas >> 2) & 7]
        osrs_h = OVERSAMPLING[self.osrs_h_active]
        ms = 1.25
        ms += 2.3 * osrs_t if osrs_t else 0
        ms += 2.3 * osrs_p + 0.575 if osrs_p else 0
        ms += 2.3 * osrs_h + 0.575 if osrs_h else 0
        return ms / 1000

    def _advance(self) -> None:
        now = self.clock()
        mode = self.regs[REG_CTRL_MEAS] & 3
        if self.measurement_end is not None and now >= self.measurement_end:
            self._convert()
            self.measurement_end = None
            if mode in (1, 2):
                self.regs[REG_CTRL_MEAS] &= ~3 & 0xFF  # forced mode returns to sleep
        if mode == 3 and self.measurement_end is None:
            if self.next_cycle is None or now >= self.next_cycle:
                t_meas = self.measurement_time_s()
                start = now if self.next_cycle is None else self.next_cycle
                self.measurement_end = start + t_meas
                self.next_cycle = self.measurement_end + STANDBY_MS[self.regs[REG_CONFIG] >> 5] / 1000
                if now >= self.measurement_end:
                    self._advance()

    def _status(self) -> int:
        status = 0x08 if self.measurement_end is not None else 0
        if self.clock() < self.nvm_ready_at:
            status |= 0x01
        return status

    def _convert(self) -> None:
        """Latches a new sample into the data registers (unless stuck)."""
        self.conversions += 1
        if self.stuck:
            self.regs[REG_DATA:REG_DATA + 8] = self._stuck_data
            return
        cond = self.environment() if self.environment is not None else self.conditions
        meas = self.regs[REG_CTRL_MEAS]
        osrs_t, osrs_p = meas >> 5, (meas >> 2) & 7
        adc_t, t_fine = raw_temperature(self.calibration, cond.temperature_c)
        adc_p = raw_pressure(self.calibration, t_fine, cond.pressure_pa)
        adc_h = raw_humidity(self.calibration, t_fine, cond.humidity_pct)
        adc_t = _quantize(adc_t, osrs_t) if osrs_t else 0x80000
        adc_p = _quantize(adc_p, osrs_p) if osrs_p else 0x80000
        adc_h = adc_h if self.osrs_h_active else 0x8000
        self.regs[REG_DATA:REG_DATA + 8] = bytes([
            adc_p >> 12, (adc_p >> 4) & 0xFF, (adc_p & 0xF) << 4,
            adc_t >> 12, (adc_t >> 4) & 0xFF, (adc_t & 0xF) << 4,
            adc_h >> 8, adc_h & 0xFF])

    def stick(self) -> None:
        """Freezes the data registers at what they hold now, across resets too."""
        self._stuck_data = bytes(self.regs[REG_DATA:REG_DATA + 8])
        super().stick()

    # -- bus side ---------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if not data:
            return
        self._advance()
        self.pointer = data[0]
        for i in range(0, len(data) - 1, 2):
            self._write_register(data[i], data[i + 1])

    def _write_register(self, reg: int, value: int) -> None:
        if reg == REG_RESET:
            if value == RESET_WORD:
                self.power_on_reset()
        elif reg == REG_CTRL_HUM:
            self.regs[reg] = value & 0x07
        elif reg == REG_CTRL_MEAS:
            self.regs[reg] = value
            self.osrs_h_active = self.regs[REG_CTRL_HUM] & 7
            mode = value & 3
            if mode in (1, 2):
                self.measurement_end = self.clock() + self.measurement_time_s()
            elif mode == 0:
                self.measurement_end = None
                self.next_cycle = None
        elif reg == REG_CONFIG:
            self.regs[reg] = value & 0xFD  # bit 1 is reserved
        # calibration, id, status and data registers are read-only

    def read(self, length: int) -> bytes:
        self._advance()
        out = bytearray()
        for i in range(length):
            reg = (self.pointer + i) & 0xFF
            if reg == REG_STATUS:
                out.append(self._status())
            elif reg == REG_ID and self.chip_id_override is not None:
                out.append(self.chip_id_override)
            else:
                out.append(self.regs[reg])
        self.pointer = (self.pointer + length) & 0xFF
        return bytes(out)


def _quantize(adc: int, osrs_field: int) -> int:
    """Oversampling x1 gives 16 bits, each doubling one more bit, up to 20 (datasheet 3.4)."""
    bits = min(20, 15 + OVERSAMPLING[osrs_field].bit_length())
    drop = 20 - bits
    return (adc >> drop) << drop


def _t_fine_double(c: Calibration, adc_t: int) -> float:
    x = adc_t / 131072.0 - c.T1 / 8192.0
    return (adc_t / 16384.0 - c.T1 / 1024.0) * c.T2 + x * x * c.T3


def raw_temperature(c: Calibration, celsius: float) -> tuple[int, int]:
    """(adc_T, t_fine): the 20-bit code whose compensated temperature is ``celsius``."""
    target = celsius * 5120.0
    # t_fine = 8*T2*x + T3*x^2 with x = adc/131072 - T1/8192.
    if c.T3 == 0:
        x = target / (8.0 * c.T2)
    else:
        disc = max(0.0, 64.0 * c.T2 * c.T2 + 4.0 * c.T3 * target)
        roots = [(-8.0 * c.T2 + s * math.sqrt(disc)) / (2.0 * c.T3) for s in (1, -1)]
        linear = target / (8.0 * c.T2)
        x = min(roots, key=lambda r: abs(r - linear))
    adc = _clamp(round((x + c.T1 / 8192.0) * 131072.0), 0, 0xFFFFF)
    return adc, int(_t_fine_double(c, adc))


def raw_pressure(c: Calibration, t_fine: int, pascal: float) -> int:
    var1 = t_fine / 2.0 - 64000.0
    var2 = var1 * var1 * c.P6 / 32768.0 + var1 * c.P5 * 2.0
    var2 = var2 / 4.0 + c.P4 * 65536.0
    var1 = (c.P3 * var1 * var1 / 524288.0 + c.P2 * var1) / 524288.0
    var1 = (1.0 + var1 / 32768.0) * c.P1
    # p = p0 + (P9*p0^2/2^31 + P8*p0/2^15 + P7)/16, solved for p0.
    a = c.P9 / 2.0 ** 35
    b = 1.0 + c.P8 / 2.0 ** 19
    k = c.P7 / 16.0 - pascal
    p0 = -k / b if a == 0 else 2.0 * -k / (b + math.sqrt(max(0.0, b * b - 4.0 * a * k)))
    adc = 1048576.0 - (p0 * var1 / 6250.0 + var2 / 4096.0)
    return _clamp(round(adc), 0, 0xFFFFF)


def raw_humidity(c: Calibration, t_fine: int, percent: float) -> int:
    v = t_fine - 76800.0
    k1 = c.H1 / 524288.0
    # h = a*(1 - k1*a), solved for the uncorrected humidity a (the root near h).
    a = percent if k1 == 0 else 2.0 * percent / (1.0 + math.sqrt(max(0.0, 1.0 - 4.0 * k1 * percent)))
    gain = c.H2 / 65536.0 * (1.0 + c.H6 / 67108864.0 * v * (1.0 + c.H3 / 67108864.0 * v))
    offset = c.H4 * 64.0 + c.H5 / 16384.0 * v
    return _clamp(round(a / gain + offset), 0, 0xFFFF)


def _clamp(v: int, lo: int, hi: int) -> int:
    return lo if v < lo else hi if v > hi else v
