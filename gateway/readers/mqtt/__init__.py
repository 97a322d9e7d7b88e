"""MQTT reader: subscribes to a broker and stores every message's points before acknowledging it.

Configuration: ``[[readers.mqtt]]`` tables, documented in ``sample.toml`` beside this file.
"""

from __future__ import annotations

from gateway.readers.mqtt.config import Config, JsonOptions, Subscription, TlsOptions
from gateway.readers.mqtt.reader import MqttReader
from gateway.runtime import Component, Context


def create(config: Config, context: Context) -> Component:
    """The running reader for one ``[[readers.mqtt]]`` table."""
    return MqttReader(config)


__all__ = ["Config", "Subscription", "JsonOptions", "TlsOptions", "MqttReader", "create"]
