"""Sensirion SHT3x (SHT30, SHT31, SHT35) humidity and temperature sensor.

Datasheet facts used:

- I2C address 0x44 (ADDR low) or 0x45 (ADDR high); 16-bit commands sent MSB first.
- Single shot without clock stretching: 0x2400 (high repeatability, max 15.5 ms), 0x240B
  (medium, 6.5 ms), 0x2416 (low, 4.5 ms). Reading before the conversion ends is NACKed.
- Soft reset 0x30A2 (max 1.5 ms); status register read 0xF32D (one word + CRC); clear status
  0x3041. Status bit 4 = reset detected, bit 1 = last command not processed.
- Result: T word, CRC, RH word, CRC; CRC-8 polynomial 0x31, init 0xFF (see ``sensirion``).
- T [°C] = -45 + 175 * S_T / (2^16 - 1); RH [%] = 100 * S_RH / (2^16 - 1).
- Ranges: -40..125 °C, 0..100 %RH.
"""

from __future__ import annotations

from gateway.readers.i2c.driver import Driver, Reading, Row, Steps
from gateway.readers.i2c.sensirion import DECIMALS, read_raw, read_result, temperature_c, words

SINGLE_SHOT = {"high": (0x2400, 0.0155), "medium": (0x240B, 0.0065), "low": (0x2416, 0.0045)}
CMD_SOFT_RESET, CMD_READ_STATUS, CMD_CLEAR_STATUS = 0x30A2, 0xF32D, 0x3041
SOFT_RESET_S = 0.0015
RANGES = {"temperature_c": (-40.0, 125.0), "humidity_pct": (0.0, 100.0)}


def humidity_pct(word: int) -> float:
    return round(100.0 * word / 65535.0, DECIMALS)


class SHT3x(Driver):
    part = "sht3x"
    addresses = (0x44, 0x45)

    def __init__(self, bus, address: int = 0x44, repeatability: str = "high") -> None:
        super().__init__(bus, address)
        if repeatability not in SINGLE_SHOT:
            raise ValueError(f"repeatability must be high, medium or low, got {repeatability!r}")
        self.repeatability = repeatability
        self.status: int | None = None

    def _command(self, command: int) -> None:
        self.bus.write_byte_data(self.address, command >> 8, command & 0xFF)

    def setup(self) -> Steps:
        self._command(CMD_SOFT_RESET)
        yield SOFT_RESET_S
        self._command(CMD_READ_STATUS)
        (self.status,) = words(read_raw(self.bus, self.address, 3), ("status",),
                               f"{self.part} at 0x{self.address:02x}")
        self._command(CMD_CLEAR_STATUS)

    def measure(self) -> Steps:
        command, duration = SINGLE_SHOT[self.repeatability]
        self._command(command)
        yield duration
        data = yield from read_result(self.bus, self.address)
        t, rh = words(data, ("temperature", "humidity"), f"{self.part} at 0x{self.address:02x}")
        fields = {"temperature_c": temperature_c(t), "humidity_pct": humidity_pct(rh)}
        return Reading([Row(fields, RANGES)], raw=(t, rh))

    def info(self) -> dict:
        return {"repeatability": self.repeatability,
                "status_at_setup": None if self.status is None else f"0x{self.status:04x}"}

