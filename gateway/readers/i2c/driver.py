"""What every I2C part driver provides, and how its steps are run.

A driver's :meth:`Driver.setup` and :meth:`Driver.measure` are generators: between bus
transactions they *yield* how many seconds to wait (a conversion in progress), and ``measure``
finally *returns* a :class:`Reading`. The reader runs each stretch of bus I/O on a worker thread
and each wait as an ``asyncio.sleep``, so no thread is held while a part converts and no other
sensor is delayed; :func:`run_blocking` runs the same steps with ``time.sleep`` (tests, tools).

Drivers raise :class:`gateway.errors.DeviceError` when a part answers wrongly (chip id, CRC,
conversion that never ends) and let ``OSError`` from the bus through (a NACK is
``OSError(EREMOTEIO)``). After any error the reader runs ``setup`` again before measuring.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Generator, Mapping

from gateway.errors import DeviceError

Steps = Generator[float, None, object]


@dataclass
class Row:
    """One point's worth of a reading: extra tags, fields, and each field's physical range."""

    fields: dict[str, float]
    ranges: Mapping[str, tuple[float, float]]
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Reading:
    rows: list[Row]
    #: The ADC codes behind the reading, compared across reads to spot a stuck part.
    raw: tuple[int, ...]


class Driver:
    """Base of the part drivers; ``bus`` is an ``smbus2.SMBus``-shaped object."""

    part = "part"
    addresses: tuple[int, ...] = ()
    #: Reads with identical raw codes after which the part counts as stuck (0: never).
    stuck_after_default = 30

    def __init__(self, bus, address: int) -> None:
        if address not in self.addresses:
            allowed = ", ".join(f"0x{a:02x}" for a in self.addresses)
            raise ValueError(f"a {self.part} answers at {allowed}, not 0x{address:02x}")
        self.bus = bus
        self.address = address

    def setup(self) -> Steps:
        """Identifies and configures the part. Generator; returns None."""
        return
        yield  # pragma: no cover

    def measure(self) -> Steps:
        """Takes one measurement. Generator; returns a :class:`Reading`."""
        raise NotImplementedError

    def info(self) -> dict:
        """What the driver learnt at setup (serial number, calibration), for the status page."""
        return {}

    def error(self, message: str) -> DeviceError:
        return DeviceError(f"{self.part} at 0x{self.address:02x}: {message}")


def run_blocking(steps: Steps, sleep=time.sleep):
    """Runs a driver generator to completion, passing each of its waits to ``sleep``."""
    try:
        wait = next(steps)
        while True:
            sleep(wait)
            wait = steps.send(None)
    except StopIteration as done:
        return done.value


def poll_until(ready, attempts: int, wait_s: float, what: str, error) -> Steps:
    """Polls ``ready()`` (a bus read) until it is true, waiting ``wait_s`` between tries."""
    for _ in range(attempts):
        if ready():
            return
        yield wait_s
    if not ready():
        raise error(f"{what} did not finish in time")
