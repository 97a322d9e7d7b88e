"""Pulse counts kept across restarts, in ``gpio-counters.json`` in the data directory (see
:mod:`gateway.countfile` for how the file survives a power cut)."""

from __future__ import annotations

import logging
import os

from gateway.countfile import CountFile

log = logging.getLogger("gateway.readers.gpio")

FILE_NAME = "gpio-counters.json"


def CounterFile(data_dir: str | os.PathLike) -> CountFile:
    """The counter file of a data directory."""
    return CountFile(os.path.join(data_dir, FILE_NAME), "counters", log)
