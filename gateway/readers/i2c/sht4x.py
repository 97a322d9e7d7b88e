"""Sensirion SHT4x (SHT40, SHT41, SHT45) humidity and temperature sensor.

Datasheet facts used:

- I2C address 0x44 (…-AD1B), 0x45 (…-BD1B) or 0x46 (…-CD1B); one-byte commands.
- Measure T and RH: 0xFD high precision (max 8.3 ms), 0xF6 medium (4.5 ms), 0xE0 low (1.6 ms).
- Read serial number 0x89 (two words, each with CRC); soft reset 0x94 (max 1 ms).
- Result: T word, CRC, RH word, CRC; CRC-8 polynomial 0x31, init 0xFF.
- T [°C] = -45 + 175 * S_T / (2^16 - 1); RH [%] = -6 + 125 * S_RH / (2^16 - 1), cropped to
  0..100 %RH as the datasheet recommends.
- Ranges: -40..125 °C.
"""

from __future__ import annotations

from gateway.readers.i2c.driver import Driver, Reading, Row, Steps
from gateway.readers.i2c.sensirion import DECIMALS, read_raw, read_result, temperature_c, words

MEASURE = {"high": (0xFD, 0.0083), "medium": (0xF6, 0.0045), "low": (0xE0, 0.0016)}
CMD_SERIAL, CMD_SOFT_RESET = 0x89, 0x94
SOFT_RESET_S = 0.001
SERIAL_S = 0.001
RANGES = {"temperature_c": (-40.0, 125.0), "humidity_pct": (0.0, 100.0)}


def humidity_pct(word: int) -> float:
    return round(min(100.0, max(0.0, -6.0 + 125.0 * word / 65535.0)), DECIMALS)


class SHT4x(Driver):
    part = "sht4x"
    addresses = (0x44, 0x45, 0x46)

    def __init__(self, bus, address: int = 0x44, repeatability: str = "high") -> None:
        super().__init__(bus, address)
        if repeatability not in MEASURE:
            raise ValueError(f"precision must be high, medium or low, got {repeatability!r}")
        self.repeatability = repeatability
        self.serial: int | None = None

    def setup(self) -> Steps:
        self.bus.write_byte(self.address, CMD_SOFT_RESET)
        yield SOFT_RESET_S
        self.bus.write_byte(self.address, CMD_SERIAL)
        yield SERIAL_S
        hi, lo = words(read_raw(self.bus, self.address, 6), ("serial high", "serial low"),
                       f"{self.part} at 0x{self.address:02x}")
        self.serial = hi << 16 | lo

    def measure(self) -> Steps:
        command, duration = MEASURE[self.repeatability]
        self.bus.write_byte(self.address, command)
        yield duration
        data = yield from read_result(self.bus, self.address)
        t, rh = words(data, ("temperature", "humidity"), f"{self.part} at 0x{self.address:02x}")
        fields = {"temperature_c": temperature_c(t), "humidity_pct": humidity_pct(rh)}
        return Reading([Row(fields, RANGES)], raw=(t, rh))

    def info(self) -> dict:
        return {"precision": self.repeatability,
                "serial": None if self.serial is None else f"0x{self.serial:08x}"}
