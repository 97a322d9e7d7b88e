"""Base of the emulated I2C parts: raw transaction hooks and fault injection.

Faults model what goes wrong on real wiring and parts:

- ``nack(n)``: the next *n* transactions (all of them if *n* is None) are not acknowledged, as with
  a loose wire or a part held in reset;
- ``vanish()`` / ``reappear()``: the part leaves the bus (unplugged, power lost) and comes back in
  its power-on state;
- ``corrupt_crc(n)``: the next *n* reads return flipped CRC bytes (only parts that send CRCs);
- ``wrong_chip_id(value)``: the identification register answers another part's id;
- ``stick()`` / ``unstick()``: the part keeps answering the same measurement bytes.

Parts answer from a clock that tests may replace, so conversion timing is checked without sleeps
when a test wants it.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from typing import Callable


def nack(address: int) -> OSError:
    """The error Linux i2c-dev reports for an address that did not acknowledge (as on a Pi)."""
    return OSError(errno.EREMOTEIO, f"{os.strerror(errno.EREMOTEIO)} (no ACK from 0x{address:02x})")


class EmulatedDevice:
    """One part at one 7-bit address. Subclasses implement :meth:`write` and :meth:`read`."""

    #: Part name for messages and the rig's listing.
    part = "device"

    def __init__(self, address: int, clock: Callable[[], float] = time.monotonic) -> None:
        if not 0x03 <= address <= 0x77:
            raise ValueError(f"invalid 7-bit I2C address 0x{address:02x}")
        self.address = address
        self.clock = clock
        self.present = True
        self._lock = threading.RLock()
        self._nacks_left: int | None = 0
        self._crc_faults_left: int | None = 0
        self.chip_id_override: int | None = None
        self.stuck = False

    # -- fault injection --------------------------------------------------------------
    def nack(self, count: int | None = 1) -> None:
        """NACKs the next ``count`` transactions (None: until :meth:`clear_faults`)."""
        self._nacks_left = count

    def corrupt_crc(self, count: int | None = 1) -> None:
        self._crc_faults_left = count

    def wrong_chip_id(self, value: int) -> None:
        self.chip_id_override = value

    def stick(self) -> None:
        self.stuck = True

    def unstick(self) -> None:
        self.stuck = False

    def vanish(self) -> None:
        self.present = False

    def reappear(self) -> None:
        """Back on the bus after a power cycle: registers at their reset values."""
        self.present = True
        self.power_on_reset()

    def clear_faults(self) -> None:
        self._nacks_left = 0
        self._crc_faults_left = 0
        self.chip_id_override = None
        self.stuck = False
        self.present = True

    # -- what the bus calls -----------------------------------------------------------
    def acknowledges(self) -> bool:
        """Whether the part ACKs its address in this transaction (consumes one injected NACK)."""
        if not self.present:
            return False
        with self._lock:
            if self._nacks_left is None:
                return False
            if self._nacks_left > 0:
                self._nacks_left -= 1
                return False
        return True

    def take_crc_fault(self) -> bool:
        with self._lock:
            if self._crc_faults_left is None:
                return True
            if self._crc_faults_left > 0:
                self._crc_faults_left -= 1
                return True
        return False

    def on_write(self, data: bytes) -> None:
        with self._lock:
            self.write(data)

    def on_read(self, length: int) -> bytes:
        with self._lock:
            return self.read(length)

    # -- the part's behaviour ---------------------------------------------------------
    def power_on_reset(self) -> None:
        """Puts registers and state back to their power-on values."""

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def read(self, length: int) -> bytes:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} at 0x{self.address:02x}>"
