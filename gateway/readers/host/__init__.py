"""Host metrics: load, temperatures, Pi power flags, memory, filesystems, network, and the
gateway's own health. See ``sample.toml`` in this folder."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.readers.host.config import Config
from gateway.runtime import Context

if TYPE_CHECKING:
    from gateway.readers.host.reader import HostReader


def create(config: Config, context: Context) -> HostReader:
    # (imported here: a command that only loads the configuration does not load the reader)
    from gateway.readers.host.reader import HostReader

    return HostReader(config, context)


def default_configs() -> list[Config]:
    """Host metrics are always collected, with or without a configuration file."""
    return [Config()]


__all__ = ["Config", "create", "default_configs"]
