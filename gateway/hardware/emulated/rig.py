"""The emulated rig: buses with parts on them and a mock GPIO header, shared by the process.

The default rig is what ``GATEWAY_HW=emulated`` gives with no configuration: a BME280 at 0x76 and
an SHT31 at 0x44 on bus 1, in a room whose temperature, humidity and pressure drift slowly with
a little sensor noise (so readings look alive and never trip stuck-value detection). Tests and
HIL scenarios reach the same objects through :func:`gateway.hardware.emulated_rig` and inject
faults into them.
"""

from __future__ import annotations

import math
import random
import threading
import time

from gateway.hardware.emulated.bme280 import Conditions, EmulatedBME280
from gateway.hardware.emulated.bus import EmulatedI2CBus
from gateway.hardware.emulated.sht import EmulatedSHT3x

DEFAULT_BUS = 1
DEFAULT_BME280_ADDRESS = 0x76
DEFAULT_SHT31_ADDRESS = 0x44


class DriftingRoom:
    """Conditions of a room: a daily temperature swing, humidity moving against it, and noise."""

    def __init__(self, seed: int = 1, clock=time.time) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._clock = clock

    def __call__(self) -> Conditions:
        day = 2 * math.pi * (self._clock() % 86400) / 86400
        with self._lock:
            noise_t, noise_h, noise_p = (self._rng.gauss(0, 0.02), self._rng.gauss(0, 0.1),
                                         self._rng.gauss(0, 2.0))
        temperature = 21.0 + 2.5 * math.sin(day) + noise_t
        humidity = 45.0 - 6.0 * math.sin(day) + noise_h
        pressure = 101325.0 + 150.0 * math.sin(day / 2) + noise_p
        return Conditions(temperature, humidity, pressure)


class EmulatedRig:
    """Buses by number, created on first use; the pin factory is made on first use too."""

    def __init__(self) -> None:
        self.buses: dict[int, EmulatedI2CBus] = {}
        self._pin_factory = None
        self._lock = threading.Lock()

    def bus(self, number: int) -> EmulatedI2CBus:
        with self._lock:
            if number not in self.buses:
                self.buses[number] = EmulatedI2CBus(number)
            return self.buses[number]

    def open_bus(self, number: int) -> EmulatedI2CBus:
        """An open handle on bus ``number`` (the bus itself stays with the rig)."""
        return self.bus(number).handle()

    @property
    def pin_factory(self):
        with self._lock:
            if self._pin_factory is None:
                from gpiozero.pins.mock import MockFactory
                self._pin_factory = MockFactory()
            return self._pin_factory


def default_rig() -> EmulatedRig:
    rig = EmulatedRig()
    room = DriftingRoom()
    bus = rig.bus(DEFAULT_BUS)
    bus.attach(EmulatedBME280(DEFAULT_BME280_ADDRESS, environment=room))
    bus.attach(EmulatedSHT3x(DEFAULT_SHT31_ADDRESS, environment=room))
    return rig
