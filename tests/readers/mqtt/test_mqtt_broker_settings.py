"""The broker settings the README asks for: mosquitto accepts them, and with them a backlog far
beyond mosquitto's default queue (1000 messages) reaches the store while the gateway was away."""

from __future__ import annotations

import asyncio
import pathlib
import re

import pytest

import gateway.readers.mqtt as mqtt_reader
from mqtt_harness import RECENT_NS, Mosquitto, Publisher, start_gateway, stop_gateway, wait_for

pytestmark = pytest.mark.integration

README = pathlib.Path(mqtt_reader.__file__).with_name("README.md")
BACKLOG = 3000


def readme_broker_settings() -> str:
    section = README.read_text().split("## Broker settings", 1)[1]
    block = re.search(r"```\n(.*?)```", section, re.S).group(1)
    # The test broker keeps its own persistence directory.
    return "".join(line + "\n" for line in block.splitlines()
                   if not line.startswith("persistence_location"))


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_readme_broker_settings_keep_a_large_backlog(tmp_path, protocol):
    settings = readme_broker_settings()
    assert "max_queued_messages 0" in settings
    broker = Mosquitto(tmp_path / "mosquitto", settings=settings)
    broker.start()
    text = f'''
[[readers.mqtt]]
server = "{broker.url}"
client_id = "backlog"
protocol = "{protocol}"
[[readers.mqtt.subscriptions]]
topic = "backlog/+"
format = "line"
'''
    try:
        async def first_run():
            store, readers = await start_gateway(text, tmp_path / "data")
            try:
                await wait_for(lambda: readers[0].connection.subscriptions[0]["granted"] is not None,
                               10, "SUBACK")
            finally:
                await stop_gateway(store, readers)

        asyncio.run(first_run())      # the session exists; the gateway is now away
        publisher = Publisher(broker)
        try:
            for i in range(BACKLOG):
                publisher.publish(f"backlog/{i % 4}", f"b,s={i % 4} v={i}i {RECENT_NS + i}")
            asyncio.run(wait_for(lambda: publisher.acked == BACKLOG, 20, "the publisher's acks"))
        finally:
            publisher.close()

        async def second_run():
            store, readers = await start_gateway(text, tmp_path / "data")
            try:
                await wait_for(lambda: readers[0].messages_stored >= BACKLOG, 20, "the backlog")
                return readers[0].health(), await store.scan("raw", measurement="b")
            finally:
                await stop_gateway(store, readers)

        health, columns = asyncio.run(second_run())
    finally:
        broker.stop()
    assert health["session_present"] is True
    assert sum(len(c) for c in columns) == BACKLOG
