"""Bosch BME280 humidity, pressure and temperature sensor (datasheet BST-BME280-DS002).

Datasheet facts used:

- I2C address 0x76 (SDO to GND) or 0x77 (SDO to VDDIO); chip id register 0xD0 reads 0x60.
- Soft reset: write 0xB6 to 0xE0; the NVM is copied within the 2 ms start-up time while
  ``status`` (0xF3) bit 0 ``im_update`` is set.
- Trimming words (table 16): 0x88..0xA1 little-endian T1 (u16), T2, T3 (s16), P1 (u16),
  P2..P9 (s16), H1 (u8 at 0xA1); 0xE1..0xE7: H2 (s16), H3 (u8), H4 = 0xE4[7:0] << 4 | 0xE5[3:0],
  H5 = 0xE6[7:0] << 4 | 0xE5[7:4] (both 12-bit signed), H6 (s8).
- ``ctrl_hum`` 0xF2 (osrs_h) takes effect only after a write to ``ctrl_meas`` 0xF4
  (osrs_t[7:5], osrs_p[4:2], mode[1:0]; mode 01 = forced). ``status`` bit 3 = measuring.
- Data burst 0xF7..0xFE read in one transaction so the sample is consistent (section 4):
  pressure and temperature are 20 bits (msb, lsb, xlsb[7:4]), humidity 16 bits. A skipped
  measurement reads 0x80000 (0x8000 for humidity), also what a part shows after an unexpected
  reset.
- Maximum measurement time (section 9.1): 1.25 + 2.3*osrs_t + (2.3*osrs_p + 0.575)
  + (2.3*osrs_h + 0.575) ms.
- Compensation (section 4.2.3 and appendix 8.1): the 32-bit integer temperature and humidity
  formulas, the 64-bit integer pressure formula (Q24.8), or the double-precision versions,
  implemented with the C data types' semantics (wrap-around, truncating division).
- Operating range: -40..85 °C, 300..1100 hPa, 0..100 %RH.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from gateway.readers.i2c.driver import Driver, Reading, Row, Steps, poll_until

CHIP_ID = 0x60
OTHER_BOSCH_IDS = {0x56: "BMP280 sample", 0x57: "BMP280 sample", 0x58: "BMP280", 0x55: "BMP180",
                   0x61: "BME680"}
REG_CALIB_A, REG_CALIB_B, REG_ID, REG_RESET = 0x88, 0xE1, 0xD0, 0xE0
REG_CTRL_HUM, REG_STATUS, REG_CTRL_MEAS, REG_CONFIG, REG_DATA = 0xF2, 0xF3, 0xF4, 0xF5, 0xF7
RESET_WORD = 0xB6
MODE_FORCED = 0b01
STATUS_MEASURING, STATUS_IM_UPDATE = 0x08, 0x01
SKIPPED_20BIT, SKIPPED_16BIT = 0x80000, 0x8000
OVERSAMPLING_CODES = {1: 1, 2: 2, 4: 3, 8: 4, 16: 5}
STARTUP_S = 0.002
RANGES = {"temperature_c": (-40.0, 85.0), "pressure_pa": (30000.0, 110000.0),
          "humidity_pct": (0.0, 100.0)}


@dataclass(frozen=True)
class Calibration:
    T1: int; T2: int; T3: int
    P1: int; P2: int; P3: int; P4: int; P5: int; P6: int; P7: int; P8: int; P9: int
    H1: int; H2: int; H3: int; H4: int; H5: int; H6: int

    @classmethod
    def from_nvm(cls, block_a: bytes, block_b: bytes) -> "Calibration":
        """From the 26 bytes at 0x88 and the 7 bytes at 0xE1."""
        if len(block_a) != 26 or len(block_b) != 7:
            raise ValueError("calibration blocks must be 26 and 7 bytes")
        t_p = struct.unpack_from("<HhhHhhhhhhhh", block_a)
        h1 = block_a[25]
        h2, h3 = struct.unpack_from("<hB", block_b)
        e4, e5, e6 = block_b[3], block_b[4], block_b[5]
        # H4 and H5 share 0xE5; their upper bytes carry the sign (12-bit signed values).
        h4 = _s8(e4) * 16 | (e5 & 0x0F)
        h5 = _s8(e6) * 16 | (e5 >> 4)
        h6 = _s8(block_b[6])
        return cls(*t_p, H1=h1, H2=h2, H3=h3, H4=h4, H5=h5, H6=h6)


def _s8(b: int) -> int:
    return b - 256 if b & 0x80 else b


def _s32(x: int) -> int:
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x & 0x80000000 else x


def _s64(x: int) -> int:
    x &= 0xFFFFFFFFFFFFFFFF
    return x - (1 << 64) if x & (1 << 63) else x


def _c_div(a: int, b: int) -> int:
    """C integer division (truncates toward zero, unlike Python's //)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


# -- integer compensation (datasheet section 4.2.3) ---------------------------------------
def compensate_temperature_int32(c: Calibration, adc_t: int) -> tuple[int, int]:
    """(temperature in 0.01 °C, t_fine)."""
    var1 = _s32(_s32(((adc_t >> 3) - (c.T1 << 1)) * c.T2) >> 11)
    d = (adc_t >> 4) - c.T1
    var2 = _s32(_s32(_s32(d * d) >> 12) * c.T3) >> 14
    t_fine = _s32(var1 + var2)
    return _s32(t_fine * 5 + 128) >> 8, t_fine


def compensate_pressure_int64(c: Calibration, adc_p: int, t_fine: int) -> int:
    """Pressure in Pa as Q24.8 (divide by 256), or 0 where the datasheet avoids a division by 0."""
    var1 = _s64(t_fine - 128000)
    var2 = _s64(var1 * var1 * c.P6)
    var2 = _s64(var2 + _s64(var1 * c.P5 << 17))
    var2 = _s64(var2 + (c.P4 << 35))
    var1 = _s64((_s64(var1 * var1 * c.P3) >> 8) + _s64(var1 * c.P2 << 12))
    var1 = _s64(_s64(((1 << 47) + var1) * c.P1) >> 33)
    if var1 == 0:
        return 0
    p = 1048576 - adc_p
    p = _c_div(_s64(_s64((p << 31) - var2) * 3125), var1)
    var1 = _s64(c.P9 * (p >> 13) * (p >> 13)) >> 25
    var2 = _s64(c.P8 * p) >> 19
    p = _s64(((p + var1 + var2) >> 8) + (c.P7 << 4))
    return p & 0xFFFFFFFF


def compensate_humidity_int32(c: Calibration, adc_h: int, t_fine: int) -> int:
    """Relative humidity in %RH as Q22.10 (divide by 1024)."""
    v = _s32(t_fine - 76800)
    left = _s32(_s32(_s32((adc_h << 14) - (c.H4 << 20) - _s32(c.H5 * v)) + 16384) >> 15)
    inner = _s32(_s32(_s32(_s32(v * c.H6) >> 10) * _s32(_s32(_s32(v * c.H3) >> 11) + 32768)) >> 10)
    right = _s32(_s32(_s32(inner + 2097152) * c.H2) + 8192) >> 14
    v = _s32(left * right)
    v = _s32(v - _s32(_s32(_s32(_s32(_s32(v >> 15) * _s32(v >> 15)) >> 7) * c.H1) >> 4))
    v = 0 if v < 0 else min(v, 419430400)
    return v >> 12


# -- double-precision compensation (datasheet appendix 8.1) -------------------------------
def compensate_temperature_double(c: Calibration, adc_t: int) -> tuple[float, int]:
    """(temperature in °C, t_fine)."""
    var1 = (adc_t / 16384.0 - c.T1 / 1024.0) * c.T2
    x = adc_t / 131072.0 - c.T1 / 8192.0
    var2 = x * x * c.T3
    return (var1 + var2) / 5120.0, int(var1 + var2)


def compensate_pressure_double(c: Calibration, adc_p: int, t_fine: int) -> float:
    var1 = t_fine / 2.0 - 64000.0
    var2 = var1 * var1 * c.P6 / 32768.0
    var2 = var2 + var1 * c.P5 * 2.0
    var2 = var2 / 4.0 + c.P4 * 65536.0
    var1 = (c.P3 * var1 * var1 / 524288.0 + c.P2 * var1) / 524288.0
    var1 = (1.0 + var1 / 32768.0) * c.P1
    if var1 == 0.0:
        return 0.0
    p = 1048576.0 - adc_p
    p = (p - var2 / 4096.0) * 6250.0 / var1
    var1 = c.P9 * p * p / 2147483648.0
    var2 = p * c.P8 / 32768.0
    return p + (var1 + var2 + c.P7) / 16.0


def compensate_humidity_double(c: Calibration, adc_h: int, t_fine: int) -> float:
    v = t_fine - 76800.0
    v = (adc_h - (c.H4 * 64.0 + c.H5 / 16384.0 * v)) * (
        c.H2 / 65536.0 * (1.0 + c.H6 / 67108864.0 * v * (1.0 + c.H3 / 67108864.0 * v)))
    v = v * (1.0 - c.H1 * v / 524288.0)
    return min(100.0, max(0.0, v))


def measurement_time_s(osrs_t: int, osrs_p: int, osrs_h: int) -> float:
    """Maximum measurement time (datasheet section 9.1) for oversampling factors (0 = skipped)."""
    ms = 1.25 + (2.3 * osrs_t if osrs_t else 0)
    ms += 2.3 * osrs_p + 0.575 if osrs_p else 0
    ms += 2.3 * osrs_h + 0.575 if osrs_h else 0
    return ms / 1000.0


class BME280(Driver):
    part = "bme280"
    addresses = (0x76, 0x77)

    def __init__(self, bus, address: int = 0x76, oversampling: int = 1,
                 compensation: str = "integer") -> None:
        super().__init__(bus, address)
        if oversampling not in OVERSAMPLING_CODES:
            raise ValueError(f"oversampling must be 1, 2, 4, 8 or 16, got {oversampling}")
        if compensation not in ("integer", "double"):
            raise ValueError(f"compensation must be 'integer' or 'double', got {compensation!r}")
        self.oversampling = oversampling
        self.compensation = compensation
        self.calibration: Calibration | None = None

    def setup(self) -> Steps:
        chip_id = self.bus.read_byte_data(self.address, REG_ID)
        if chip_id != CHIP_ID:
            known = OTHER_BOSCH_IDS.get(chip_id)
            what = f" (that is a {known})" if known else ""
            raise self.error(f"chip id 0x{chip_id:02x}{what}, expected 0x{CHIP_ID:02x}")
        self.bus.write_byte_data(self.address, REG_RESET, RESET_WORD)
        yield STARTUP_S
        yield from poll_until(
            lambda: not self.bus.read_byte_data(self.address, REG_STATUS) & STATUS_IM_UPDATE,
            10, 0.001, "NVM copy after reset", self.error)
        block_a = bytes(self.bus.read_i2c_block_data(self.address, REG_CALIB_A, 26))
        block_b = bytes(self.bus.read_i2c_block_data(self.address, REG_CALIB_B, 7))
        if block_a[:6].count(0) == 6 or block_a[:6].count(0xFF) == 6:
            raise self.error("calibration NVM reads blank")
        calibration = Calibration.from_nvm(block_a, block_b)
        if calibration.T1 == 0 or calibration.P1 == 0:
            raise self.error("calibration NVM is implausible (T1 or P1 is zero)")
        self.calibration = calibration
        code = OVERSAMPLING_CODES[self.oversampling]
        self.bus.write_byte_data(self.address, REG_CTRL_HUM, code)
        self.bus.write_byte_data(self.address, REG_CONFIG, 0x00)  # filter off, as for forced mode

    def measure(self) -> Steps:
        if self.calibration is None:
            raise self.error("not set up")
        code = OVERSAMPLING_CODES[self.oversampling]
        self.bus.write_byte_data(self.address, REG_CTRL_MEAS, code << 5 | code << 2 | MODE_FORCED)
        n = self.oversampling
        yield measurement_time_s(n, n, n)
        yield from poll_until(
            lambda: not self.bus.read_byte_data(self.address, REG_STATUS) & STATUS_MEASURING,
            10, 0.001, "conversion", self.error)
        d = self.bus.read_i2c_block_data(self.address, REG_DATA, 8)
        adc_p = d[0] << 12 | d[1] << 4 | d[2] >> 4
        adc_t = d[3] << 12 | d[4] << 4 | d[5] >> 4
        adc_h = d[6] << 8 | d[7]
        if adc_t == SKIPPED_20BIT or adc_p == SKIPPED_20BIT or adc_h == SKIPPED_16BIT:
            raise self.error("data registers hold their reset value (the part has been reset)")
        fields = self.compensate(adc_t, adc_p, adc_h)
        return Reading([Row(fields, RANGES)], raw=(adc_t, adc_p, adc_h))

    def compensate(self, adc_t: int, adc_p: int, adc_h: int) -> dict[str, float]:
        c = self.calibration
        if self.compensation == "double":
            t, t_fine = compensate_temperature_double(c, adc_t)
            return {"temperature_c": t, "pressure_pa": compensate_pressure_double(c, adc_p, t_fine),
                    "humidity_pct": compensate_humidity_double(c, adc_h, t_fine)}
        t, t_fine = compensate_temperature_int32(c, adc_t)
        return {"temperature_c": t / 100.0,
                "pressure_pa": compensate_pressure_int64(c, adc_p, t_fine) / 256.0,
                "humidity_pct": compensate_humidity_int32(c, adc_h, t_fine) / 1024.0}

    def info(self) -> dict:
        return {"calibration": vars(self.calibration) if self.calibration else None,
                "oversampling": self.oversampling, "compensation": self.compensation}
