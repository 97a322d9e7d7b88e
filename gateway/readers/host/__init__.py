"""Host metrics: load, temperatures, Pi power flags, memory, filesystems, network, and the
gateway's own health. See ``sample.toml`` in this folder."""

from __future__ import annotations

from gateway.readers.host.config import Config
from gateway.readers.host.reader import HostReader
from gateway.runtime import Context


def create(config: Config, context: Context) -> HostReader:
    return HostReader(config, context)


def default_configs() -> list[Config]:
    """Host metrics are always collected, with or without a configuration file."""
    return [Config()]


__all__ = ["Config", "HostReader", "create", "default_configs"]
