"""Sensor readers, one package per kind, found through this registry.

A reader kind is a module ``gateway.readers.<kind>`` that exports:

- ``Config``: a dataclass (see :mod:`gateway.config.schema`) for one ``[[readers.<kind>]]``
  table, documented by the kind's ``sample.toml``;
- ``create(config, context) -> gateway.runtime.Component``: the running reader.

In the configuration each kind is a table or an array of tables under ``readers``.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

#: Every reader kind the gateway knows, by the name used in the configuration.
KINDS = ("host", "i2c", "gpio", "mqtt")


def available_kinds() -> tuple[str, ...]:
    return tuple(k for k in KINDS if importlib.util.find_spec(f"gateway.readers.{k}") is not None)


def kind_module(kind: str) -> ModuleType:
    return importlib.import_module(f"gateway.readers.{kind}")
