"""TI ADS1115 16-bit analog-to-digital converter (datasheet SBAS444).

Datasheet facts used:

- I2C address 0x48..0x4B (ADDR pin to GND, VDD, SDA, SCL).
- Address pointer register selects: 0x00 conversion, 0x01 config, 0x02 Lo_thresh, 0x03 Hi_thresh.
  Registers are 16 bits, sent MSB first. SMBus ``read_word_data`` assumes LSB first, so the two
  bytes of every word read that way are swapped back here.
- Config: OS[15] (write 1 in single-shot mode starts a conversion; reads 0 while converting,
  1 when idle), MUX[14:12] (100..111 = AIN0..AIN3 against GND), PGA[11:9] (000 ±6.144 V,
  001 ±4.096, 010 ±2.048, 011 ±1.024, 100 ±0.512, 101 ±0.256), MODE[8] (1 single-shot),
  DR[7:5] (8, 16, 32, 64, 128, 250, 475, 860 SPS), COMP_QUE[1:0] = 11 disables the comparator.
- A conversion takes 1/DR; the internal oscillator is accurate to ±10 %, so the driver waits
  1.1/DR and then polls OS.
- Conversion result: two's complement, 1 LSB = FSR / 2^15; 0x7FFF and 0x8000 mean the input is
  at or beyond full scale (clipped), which the reader rejects as out of range.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.readers.i2c.driver import Driver, Reading, Row, Steps, poll_until

REG_CONVERSION, REG_CONFIG = 0x00, 0x01
OS_BIT, MODE_SINGLE_SHOT, COMPARATOR_OFF = 0x8000, 0x0100, 0x0003
PGA_CODES = {6.144: 0, 4.096: 1, 2.048: 2, 1.024: 3, 0.512: 4, 0.256: 5}
DATA_RATE_CODES = {8: 0, 16: 1, 32: 2, 64: 3, 128: 4, 250: 5, 475: 6, 860: 7}
OSCILLATOR_TOLERANCE = 0.10


@dataclass(frozen=True)
class Channel:
    """One single-ended input with its gain and data rate, and an optional linear scaling."""

    input: int
    name: str
    full_scale_v: float = 4.096
    data_rate: int = 128
    scale: float = 1.0
    offset: float = 0.0
    scaled: bool = False

    def config_word(self) -> int:
        return (OS_BIT | (0b100 + self.input) << 12 | PGA_CODES[self.full_scale_v] << 9
                | MODE_SINGLE_SHOT | DATA_RATE_CODES[self.data_rate] << 5 | COMPARATOR_OFF)

    def volts(self, code: int) -> float:
        return code * self.full_scale_v / 32768.0

    def volt_range(self) -> tuple[float, float]:
        """Codes strictly inside the clipping codes 0x8000 and 0x7FFF."""
        return self.volts(-32767), self.volts(32766)


def swap_bytes(word: int) -> int:
    """An SMBus word (LSB first on the wire) back to the register's big-endian value."""
    return (word & 0xFF) << 8 | word >> 8


def to_signed(word: int) -> int:
    return word - 0x10000 if word & 0x8000 else word


class ADS1115(Driver):
    part = "ads1115"
    addresses = (0x48, 0x49, 0x4A, 0x4B)
    stuck_after_default = 0  # a steady input legitimately gives the same code

    def __init__(self, bus, address: int = 0x48, channels: list[Channel] | None = None) -> None:
        super().__init__(bus, address)
        self.channels = list(channels or [Channel(0, "ain0")])
        for ch in self.channels:
            if not 0 <= ch.input <= 3:
                raise ValueError(f"input must be 0..3, got {ch.input}")
            if ch.full_scale_v not in PGA_CODES:
                raise ValueError(f"full_scale_v must be one of {sorted(PGA_CODES)}, got {ch.full_scale_v}")
            if ch.data_rate not in DATA_RATE_CODES:
                raise ValueError(f"data_rate must be one of {sorted(DATA_RATE_CODES)}, got {ch.data_rate}")

    def read_register(self, register: int) -> int:
        return swap_bytes(self.bus.read_word_data(self.address, register))

    def write_register(self, register: int, value: int) -> None:
        self.bus.write_i2c_block_data(self.address, register, [value >> 8, value & 0xFF])

    def setup(self) -> Steps:
        # Write a configuration without starting a conversion and read it back: a part that is
        # not an ADS1115 (or a byte-order mistake) shows up here rather than as odd voltages.
        probe = self.channels[0].config_word() & ~OS_BIT
        self.write_register(REG_CONFIG, probe)
        back = self.read_register(REG_CONFIG)
        if back & ~OS_BIT != probe:
            raise self.error(f"config register reads back 0x{back:04x} after writing 0x{probe:04x}")
        return
        yield  # pragma: no cover

    def measure(self) -> Steps:
        rows, raw = [], []
        for ch in self.channels:
            self.write_register(REG_CONFIG, ch.config_word())
            yield (1.0 + OSCILLATOR_TOLERANCE) / ch.data_rate
            yield from poll_until(lambda: self.read_register(REG_CONFIG) & OS_BIT, 20, 0.001,
                                  f"conversion of AIN{ch.input}", self.error)
            code = to_signed(self.read_register(REG_CONVERSION))
            raw.append(code)
            volts = ch.volts(code)
            fields = {"voltage_v": volts}
            ranges = {"voltage_v": ch.volt_range()}
            if ch.scaled:
                lo, hi = (ch.volt_range()[i] * ch.scale + ch.offset for i in (0, 1))
                fields["value"] = volts * ch.scale + ch.offset
                ranges["value"] = (min(lo, hi), max(lo, hi))
            rows.append(Row(fields, ranges, {"channel": ch.name}))
        return Reading(rows, raw=tuple(raw))

    def info(self) -> dict:
        return {"channels": [{"input": c.input, "name": c.name, "full_scale_v": c.full_scale_v,
                              "data_rate": c.data_rate} for c in self.channels]}
