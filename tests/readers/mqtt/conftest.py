"""Fixtures of the MQTT reader's tests: a real mosquitto and a publisher (see mqtt_harness)."""

from __future__ import annotations

import pytest

from mqtt_harness import Mosquitto, Publisher


@pytest.fixture
def mosquitto(tmp_path):
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def publisher(mosquitto):
    p = Publisher(mosquitto)
    yield p
    p.close()
