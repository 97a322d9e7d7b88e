"""Replication to a real mosquitto at QoS 1: a subscriber gets every point of the store once
(line protocol or JSON), on the topic of the template."""

from __future__ import annotations

import asyncio
import json
import threading

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.lineprotocol import series_key
from gateway.store.transfer import export_lines
from hil.rigs.mosquitto import Mosquitto
from replication_support import local_content, rows, running_stream, stream_config, write_rows
from upstreams import RECENT_NS


pytestmark = pytest.mark.integration


class Subscriber:
    def __init__(self, broker: Mosquitto) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="upstream-reader",
                                  clean_session=False)
        self.client.on_message = self._on_message
        self.subscribed = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("gw/#", qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.set()
        self.client.reconnect_delay_set(0.1, 1)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert self.subscribed.wait(30), "the subscriber never got its SUBACK"

    def _on_message(self, client, userdata, message) -> None:
        with self.lock:
            self.messages.append((message.topic, message.payload))

    def lines(self) -> list[tuple[str, bytes]]:
        with self.lock:
            return [(t, line) for t, p in self.messages for line in p.splitlines()]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker(tmp_path):
    b = Mosquitto(tmp_path / "mosquitto")
    b.start()
    yield b
    b.stop()


async def expected_lines(store) -> list[bytes]:
    out = []
    for bucket in ("raw", "rollup"):
        async for text in export_lines(store, bucket):
            out += text.splitlines()
    return sorted(out)


@pytest.mark.parametrize("payload", ["line", "json"])
def test_every_point_reaches_a_subscriber_once(tmp_path, broker, payload):
    sub = Subscriber(broker)

    async def main():
        config = stream_config("mqtt", broker.url, topic="gw/{bucket}/{measurement}", format=payload)
        async with running_stream(str(tmp_path / "data"), config) as (store, stream):
            await write_rows(store, rows(3, RECENT_NS, 100))
            await write_rows(store, [("env_1m", {"room": "r0"}, "mean", RECENT_NS, 20.5)], "rollup")
            want = await expected_lines(store)
            while len(sub.lines()) < len(want):
                await asyncio.sleep(0.1)
            got = sub.lines()
            topics = {t for t, _ in got}
            assert topics == {"gw/raw/env", "gw/rollup/env_1m"}
            if payload == "line":
                assert sorted(line for _, line in got) == want
            else:  # values compared as numbers: JSON keeps a float64 exactly
                received = sorted((series_key(i["measurement"], i["tags"], i["field"]), i["time"],
                                   i["value"]) for i in (json.loads(line) for _, line in got))
                assert received == sorted((key, ts, v) for key, points in
                                          (await local_content(store)).items() for ts, v in points)
            assert stream.stats()["last_error"] is None

    try:
        asyncio.run(main())
    finally:
        sub.close()
