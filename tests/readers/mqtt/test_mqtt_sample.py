"""sample.toml is the MQTT reader's documentation: it must load, and every example in it must hold."""

from __future__ import annotations

import pathlib
import re

import pytest

import gateway.readers.mqtt as mqtt_reader
from gateway import lineprotocol
from gateway.batch import Batch
from gateway.config import load_text
from gateway.readers.mqtt.payloads import PointSink, decoder_for

SAMPLE = pathlib.Path(mqtt_reader.__file__).with_name("sample.toml")
README = SAMPLE.with_name("README.md")
ARRIVAL_NS = 1_700_000_000_123_456_789
_EXAMPLE_LINE = re.compile(r"^#\s+(topic|payload|stored):\s*(.*)$")


def _examples() -> list[tuple[int, dict]]:
    """(subscription index, {topic, payload, stored}) for each Example block of sample.toml."""
    chunks = SAMPLE.read_text().split("[[readers.mqtt.subscriptions]]")[1:]
    found = []
    for index, chunk in enumerate(chunks):
        example: dict = {"payload": [], "stored": []}
        for line in chunk.splitlines():
            m = _EXAMPLE_LINE.match(line)
            if m:
                key, value = m.groups()
                if key == "topic":
                    example["topic"] = value
                else:
                    example[key].append(value)
        if "topic" in example:
            found.append((index, example))
    return found


def _points(batch: Batch) -> list:
    return sorted((key, ts, type(v).__name__, v) for key, ts, v in batch)


def test_sample_loads_with_every_subscription():
    config = load_text(SAMPLE.read_text(), str(SAMPLE)).readers["mqtt"][0]
    assert config.endpoint == "mqtt://127.0.0.1:1883"
    assert len(config.subscriptions) >= 7
    formats = {s.format for s in config.subscriptions}
    assert formats == {"line", "json", "value"}


def test_every_subscription_has_an_example():
    config = load_text(SAMPLE.read_text()).readers["mqtt"][0]
    covered = {index for index, _ in _examples()}
    assert covered == set(range(len(config.subscriptions)))


@pytest.mark.parametrize("index,example", _examples(),
                         ids=[e["topic"] for _, e in _examples()])
def test_sample_example(index, example):
    sub = load_text(SAMPLE.read_text()).readers["mqtt"][0].subscriptions[index]
    sink = PointSink()
    payload = "\n".join(example["payload"]).encode()
    decoder_for(sub).decode(example["topic"], payload, ARRIVAL_NS, sink)
    assert sink.seal() == []
    batch = sink.batch
    # a line without a timestamp gets the arrival time truncated to the precision (InfluxDB's rule)
    unit = lineprotocol.PRECISIONS[sub.precision if sub.format == "line" else "ns"]
    expected = lineprotocol.parse("\n".join(example["stored"]),
                                  default_time_ns=ARRIVAL_NS - ARRIVAL_NS % unit)
    assert not expected.errors, expected.errors
    assert len(batch) == len(example["stored"])
    assert _points(batch) == _points(expected.batch)


def test_readme_includes_the_sample_verbatim():
    assert SAMPLE.read_text().strip() in README.read_text()
