"""I2C sensors: the BME280, SHT3x, SHT4x and ADS1115 drivers and the reader that polls them.

See ``sample.toml`` in this folder for the configuration and README.md for the parts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway import hardware
from gateway.readers.i2c.config import ChannelConfig, Config, SensorConfig
from gateway.runtime import Context

if TYPE_CHECKING:
    from gateway.readers.i2c.reader import I2CReader


def create(config: Config, context: Context) -> I2CReader:
    # (imported here: a command that only loads the configuration does not load the reader)
    from gateway.readers.i2c.reader import I2CReader

    return I2CReader(config, context)


def default_configs() -> list[Config]:
    """With no configuration file: the emulated rig's BME280 and SHT31 on bus 1 when the
    hardware is emulated; nothing on real hardware (probing unknown wiring is not safe)."""
    try:
        if hardware.resolve("auto") != "emulated":
            return []
    except hardware.HardwareUnavailable:
        return []
    from gateway.hardware.emulated.rig import DEFAULT_BME280_ADDRESS, DEFAULT_BUS, DEFAULT_SHT31_ADDRESS
    config = Config(bus=DEFAULT_BUS, sensors=[
        SensorConfig(part="bme280", address=DEFAULT_BME280_ADDRESS, name="rig-bme280"),
        SensorConfig(part="sht3x", address=DEFAULT_SHT31_ADDRESS, name="rig-sht31"),
    ])
    config.emulated_rig_only = True
    return [config]


__all__ = ["Config", "SensorConfig", "ChannelConfig", "create", "default_configs"]
