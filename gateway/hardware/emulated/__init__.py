"""Emulated hardware: an I2C bus with register-level part models, and the rig that holds them."""

from gateway.hardware.emulated.ads1115 import EmulatedADS1115
from gateway.hardware.emulated.bme280 import Calibration, Conditions, EmulatedBME280
from gateway.hardware.emulated.bus import EmulatedI2CBus
from gateway.hardware.emulated.device import EmulatedDevice
from gateway.hardware.emulated.rig import EmulatedRig, default_rig
from gateway.hardware.emulated.sht import EmulatedSHT3x, EmulatedSHT4x

__all__ = ["EmulatedADS1115", "EmulatedBME280", "EmulatedDevice", "EmulatedI2CBus", "EmulatedRig",
           "EmulatedSHT3x", "EmulatedSHT4x", "Calibration", "Conditions", "default_rig"]
