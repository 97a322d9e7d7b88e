"""Replication to a real mosquitto at QoS 1: a subscriber gets every point of the store once
(line protocol or JSON), on the topic of the template; across a broker restart; over TLS, and
a certificate from another CA is refused and counted."""

from __future__ import annotations

import asyncio
import json
import pathlib
import sys
import threading

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.lineprotocol import series_key
from gateway.store.transfer import export_lines
from hil.rigs.mosquitto import Mosquitto
from replication_support import (RECENT_NS, local_content, rows, running_stream, stream_config,
                                 write_rows)

# The certificate maker of the MQTT reader's TLS tests.
sys.path.insert(0, str(pathlib.Path(__file__).parent.parent / "readers" / "mqtt"))
from test_mqtt_connection import make_certificates  # noqa: E402  (a CA and certificates by openssl)

pytestmark = pytest.mark.integration


class Subscriber:
    """A persistent QoS 1 session on ``gw/#`` (the broker keeps its messages while it is away,
    and across a restart); over TLS when given the CA."""

    def __init__(self, broker: Mosquitto, ca_file: str | None = None) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="upstream-reader",
                                  clean_session=False)
        if ca_file:
            self.client.tls_set(ca_certs=ca_file)
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


async def wait_for_lines(sub: Subscriber, count: int, timeout: float = 60) -> None:
    async def arrived():
        while len(sub.lines()) < count:
            await asyncio.sleep(0.1)

    await asyncio.wait_for(arrived(), timeout)


def test_a_broker_restart_loses_nothing(tmp_path, broker):
    """The broker stops (saving its persistence) while the gateway keeps taking points and
    comes back on the same port: the stream backs off, reconnects and delivers the rest; the
    subscriber's persistent session gets every point once."""
    sub = Subscriber(broker)

    async def main():
        config = stream_config("mqtt", broker.url, topic="gw/{bucket}/{measurement}", timeout="2s")
        async with running_stream(str(tmp_path / "data"), config) as (store, stream):
            await write_rows(store, rows(3, RECENT_NS, 100))
            await wait_for_lines(sub, len(await expected_lines(store)))
            await asyncio.get_running_loop().run_in_executor(None, broker.stop)
            await write_rows(store, rows(3, RECENT_NS + 100 * 1_000_000_000, 100))
            await write_rows(store, [("env_1m", {"room": "r0"}, "mean", RECENT_NS, 20.5)], "rollup")

            async def failed():
                while stream.status.counters["errors"] < 2:
                    await asyncio.sleep(0.1)

            await asyncio.wait_for(failed(), 60)
            assert stream.stats()["state"] == "backing_off"
            await asyncio.get_running_loop().run_in_executor(None, broker.start)
            want = await expected_lines(store)
            await wait_for_lines(sub, len(want))
            got = sorted(line for _, line in sub.lines())
            # Nothing was in flight when the broker stopped (every line had arrived): no resend.
            assert got == want
            assert stream.stats()["buckets"]["raw"]["backlog_blocks"] == 0

    try:
        asyncio.run(main())
    finally:
        sub.close()


def test_tls_delivers_and_a_certificate_of_another_ca_is_refused(tmp_path):
    certs = make_certificates(tmp_path / "certs")
    other = make_certificates(tmp_path / "other-ca")
    broker = Mosquitto(tmp_path / "mosquitto", listener_options=(
        f"certfile {certs}/server.pem\nkeyfile {certs}/server.key\nallow_anonymous true\n"))
    broker.start()
    url = f"mqtts://{broker.host}:{broker.port}"
    sub = None
    try:
        sub = Subscriber(broker, ca_file=str(certs / "ca.pem"))

        async def main():
            wrong = stream_config("mqtt", url, name="wrong-ca", topic="gw/{bucket}/{measurement}",
                                  ca_file=str(other / "ca.pem"), timeout="2s")
            async with running_stream(str(tmp_path / "wrong"), wrong) as (store, stream):
                await write_rows(store, [("env", {"room": "r9"}, "temp", RECENT_NS, 1.5)])

                async def refused():
                    while stream.status.counters["errors_tls"] < 1:
                        await asyncio.sleep(0.1)

                await asyncio.wait_for(refused(), 60)
                stats = stream.stats()
                assert stats["state"] == "backing_off"
                assert "TLS certificate not accepted" in stats["last_error"]
                assert "wrong-ca" in stats["last_error"]
                assert stats["buckets"]["raw"]["position"] == 0
            config = stream_config("mqtt", url, topic="gw/{bucket}/{measurement}",
                                   ca_file=str(certs / "ca.pem"))
            async with running_stream(str(tmp_path / "data"), config) as (store, stream):
                await write_rows(store, rows(3, RECENT_NS, 100))
                want = await expected_lines(store)
                await wait_for_lines(sub, len(want))
                assert sorted(line for _, line in sub.lines()) == want
                assert stream.stats()["last_error"] is None

        asyncio.run(main())
    finally:
        if sub is not None:
            sub.close()
        broker.stop()
