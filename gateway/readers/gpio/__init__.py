"""GPIO inputs: contacts and buttons as state changes, pulse outputs as counters with a rate.

See ``sample.toml`` in this folder for the configuration and README.md for the behaviour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.readers.gpio.config import Config, InputConfig
from gateway.runtime import Context

if TYPE_CHECKING:
    from gateway.readers.gpio.reader import GPIOReader


def create(config: Config, context: Context) -> GPIOReader:
    # (imported here: a command that only loads the configuration does not load the reader)
    from gateway.readers.gpio.reader import GPIOReader

    return GPIOReader(config, context)


__all__ = ["Config", "InputConfig", "create"]
