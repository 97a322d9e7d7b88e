"""MQTT reader: subscribes to a broker and stores every message's points before acknowledging it.

Configuration: ``[[readers.mqtt]]`` tables, documented in ``sample.toml`` beside this file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.readers.mqtt.config import Config, JsonOptions, Subscription, TlsOptions
from gateway.runtime import Context

if TYPE_CHECKING:
    from gateway.readers.mqtt.reader import MqttReader


def create(config: Config, context: Context) -> MqttReader:
    """The running reader for one ``[[readers.mqtt]]`` table."""
    # (imported here: a command that only loads the configuration does not load the reader)
    from gateway.readers.mqtt.reader import MqttReader

    return MqttReader(config)


__all__ = ["Config", "Subscription", "JsonOptions", "TlsOptions", "create"]
