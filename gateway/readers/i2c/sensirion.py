"""What the Sensirion humidity sensors share: the CRC-8 over each 16-bit word, raw reads, and
the temperature conversion (T = -45 + 175 * S / 65535 in both the SHT3x and SHT4x datasheets).

CRC-8 per the SHT3x/SHT4x datasheets: polynomial 0x31 (x^8 + x^5 + x^4 + 1), initial value 0xFF,
no input or output reflection, no final XOR; CRC(0xBEEF) = 0x92.
"""

from __future__ import annotations

from smbus2 import i2c_msg

from gateway.errors import DeviceError


def _table() -> tuple[int, ...]:
    out = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        out.append(crc)
    return tuple(out)


_CRC_TABLE = _table()

#: Readings are rounded to 0.001: one raw step is 0.0027 °C and at least 0.0015 %RH, so every
#: code keeps its own value, and the store's codec sees decimals instead of 17-digit binary
#: fractions (which it would have to keep bit for bit).
DECIMALS = 3


def temperature_c(word: int) -> float:
    return round(-45.0 + 175.0 * word / 65535.0, DECIMALS)


def crc8(data: bytes) -> int:
    crc = 0xFF
    for byte in data:
        crc = _CRC_TABLE[crc ^ byte]
    return crc


def read_raw(bus, address: int, length: int) -> bytes:
    """A plain I2C read of ``length`` bytes (no register byte first), as these parts expect."""
    msg = i2c_msg.read(address, length)
    bus.i2c_rdwr(msg)
    return bytes(msg)


def words(data: bytes, names: tuple[str, ...], where: str) -> list[int]:
    """The 16-bit words of ``data`` (word, CRC, word, CRC...), each CRC checked."""
    out = []
    for i, name in enumerate(names):
        chunk = data[3 * i:3 * i + 3]
        if len(chunk) != 3:
            raise DeviceError(f"{where}: short read ({len(data)} bytes)")
        expected = crc8(chunk[:2])
        if chunk[2] != expected:
            raise DeviceError(f"{where}: CRC mismatch on the {name} word "
                              f"(got 0x{chunk[2]:02x}, expected 0x{expected:02x})")
        out.append(chunk[0] << 8 | chunk[1])
    return out


#: Extra 1 ms tries after the datasheet's maximum conversion time before giving up.
READ_RETRIES = 5


def read_result(bus, address: int):
    """Reads the 6 result bytes, retrying while the part still NACKs (conversion running).
    Driver step generator: yields waits, returns the bytes."""
    for attempt in range(READ_RETRIES + 1):
        try:
            return read_raw(bus, address, 6)
        except OSError:
            if attempt == READ_RETRIES:
                raise
            yield 0.001
