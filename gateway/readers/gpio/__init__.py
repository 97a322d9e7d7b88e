"""GPIO inputs: contacts and buttons as state changes, pulse outputs as counters with a rate.

See ``sample.toml`` in this folder for the configuration and README.md for the behaviour.
"""

from __future__ import annotations

from gateway.readers.gpio.config import Config, InputConfig
from gateway.readers.gpio.reader import GPIOReader
from gateway.runtime import Context


def create(config: Config, context: Context) -> GPIOReader:
    return GPIOReader(config, context)


__all__ = ["Config", "InputConfig", "GPIOReader", "create"]
