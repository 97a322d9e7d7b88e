"""The one exception root of the gateway and its leaves.

Each leaf also inherits the builtin it corresponds to, so callers may catch either
(``except ConfigError`` or ``except ValueError``).
"""

from __future__ import annotations


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose."""


class ConfigError(GatewayError, ValueError):
    """The configuration file (or a value in it) is invalid.

    ``problems`` holds every problem found, each a :class:`gateway.config.Problem`.
    """

    def __init__(self, message: str, problems: list | None = None):
        super().__init__(message)
        self.problems = list(problems or [])


class LineProtocolError(GatewayError, ValueError):
    """A line of InfluxDB line protocol could not be parsed (line and column in the message)."""

    def __init__(self, message: str, line: int = 0, column: int = 0):
        super().__init__(message)
        self.line = line
        self.column = column


class CorruptBlock(GatewayError, ValueError):
    """A stored or received block fails validation: bad magic, checksum, or structure."""


class CorruptRecord(GatewayError, ValueError):
    """A WAL record or ring-file entry fails its checksum or structure checks."""


class StoreError(GatewayError, OSError):
    """The store could not complete an operation (I/O error, full disk, closed store)."""


class StoreLocked(StoreError):
    """Another process holds the data directory's lock."""


class ReaderError(GatewayError, IOError):
    """A sensor reader could not read its source."""


class DeviceError(ReaderError):
    """A hardware device answered wrongly: absent, wrong chip id, bad CRC, out-of-range value."""


class NativeError(GatewayError, RuntimeError):
    """The C core returned an error code that has no more specific meaning."""
