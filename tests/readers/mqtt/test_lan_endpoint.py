"""The LAN endpoint against real clients (paho) and raw sockets: acknowledgements after the store
write, messages passed on once, and bad input closed as the MQTT standard says, counted, without
costing another client a message. Statement numbers: v3 = MQTT 3.1.1, v5 = MQTT 5.0."""

from __future__ import annotations

import asyncio
import logging
import select
import socket
import subprocess
import threading

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from gateway.readers.mqtt import packets as p

from mqtt_harness import (RECENT_NS, RawClient, connect_packet, free_port, lan_config, mqtt_packet,
                          password_file, publish_packet, start_gateway, stop_gateway, wait_for)

pytestmark = pytest.mark.integration

USER, PASSWORD = "sensor", "s3cret-pw"


def run_lan(mosquitto, tmp_path, scenario, extra: str = "", store: str = ""):
    passwd = password_file(tmp_path, {USER: PASSWORD})
    port = free_port()

    async def main():
        gateway = await start_gateway(lan_config(mosquitto, port, passwd, extra, store), tmp_path / "data")
        try:
            await scenario(gateway[1][0], port)
        finally:
            await stop_gateway(*gateway)
        return gateway

    return asyncio.run(main())


class Device:
    """paho publishing as a LAN device does: username, password, QoS 1."""

    def __init__(self, port: int, client_id: str, version=MQTTProtocolVersion.MQTTv311,
                 password: str = PASSWORD) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=version)
        self.client.username_pw_set(USER, password)
        self.acked: set[int] = set()
        self.connect_result = None
        self.client.on_publish = lambda c, u, mid, rc, props: self.acked.add(mid)
        self.client.on_connect = lambda c, u, flags, rc, props: setattr(self, "connect_result", rc)
        self.client.max_inflight_messages_set(100)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def publish(self, topic: str, payload: str, qos: int = 1) -> int:
        return self.client.publish(topic, payload, qos=qos).mid

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Subscriber:
    """A subscriber on mosquitto; ``persistent``: its session and queue survive a broker
    restart, and paho reconnects it."""

    def __init__(self, mosquitto, topic: str, persistent: bool = False) -> None:
        self.topics: list[str] = []
        self.payloads: list[bytes] = []
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="lan-test-subscriber",
                                  clean_session=not persistent)
        self.client.reconnect_delay_set(0.1, 1)

        def on_message(client, userdata, message):
            self.payloads.append(message.payload)
            self.topics.append(message.topic)

        self.client.on_message = on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect(mosquitto.host, mosquitto.port)
        self.client.loop_start()
        self.client.subscribe(topic, 1)
        assert subscribed.wait(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def stored_values(reader, measurement: str) -> dict:
    columns = await reader._store.scan("raw", measurement=measurement)
    return {(c.key, ts): v for c in columns for ts, v in zip(c.timestamps, c.values)}


@pytest.mark.parametrize("version", [MQTTProtocolVersion.MQTTv311, MQTTProtocolVersion.MQTTv5],
                         ids=["3.1.1", "5"])
def test_paho_device_is_acked_after_store_and_passed_on_once(mosquitto, tmp_path, version):
    n = 150
    subscriber = Subscriber(mosquitto, "lan/#")

    async def scenario(reader, port):
        device = await asyncio.to_thread(Device, port, "device-1", version)
        try:
            mids = [device.publish("lan/room", f"env,room=r{i % 3} seq={i}i {RECENT_NS + i}", qos=i % 3)
                    for i in range(n)]
            await wait_for(lambda: device.acked >= set(mids), 20, "every publish acknowledged")
            stored = await stored_values(reader, "env")
            assert len(stored) == n
            assert {v for v in stored.values()} == set(range(n))
            await wait_for(lambda: len(subscriber.topics) >= n, 10, "messages passed on")
            # The broker's PUBACKs for the QoS 1 copies (taken in bulk, not by paho) clear them.
            forwarder = reader.connection.forwarder
            await wait_for(lambda: not forwarder.unacked, 10, "passed-on copies acknowledged")
            assert forwarder.acked == sum(1 for i in range(n) if i % 3) and forwarder.failures == 0
        finally:
            device.close()
        # The reader subscribes to lan/# on the same broker: No Local keeps the forwarded copies
        # away from it, so every message was received (and stored) exactly once.
        assert reader.messages_received == n
        assert reader.forwarded == n and reader.bad_messages == 0
        assert reader.health()["lan"]["wrong_passwords"] == 0

    try:
        run_lan(mosquitto, tmp_path, scenario, store='[store]\nwal_sync = "200ms"')
    finally:
        subscriber.close()
    assert len(subscriber.topics) == n


def test_broker_restart_neither_blocks_ingest_nor_loses_a_passed_on_message(mosquitto, tmp_path):
    """Messages passed on wait in the gateway while mosquitto is down (devices are still acked
    after the store write) and reach a persistent subscriber once it is back."""
    subscriber = Subscriber(mosquitto, "lan/#", persistent=True)
    seqs = lambda: {int(m.split(b"seq=")[1].split(b"i")[0]) for m in subscriber.payloads}

    async def scenario(reader, port):
        device = await asyncio.to_thread(Device, port, "device-restart")
        try:
            before = [device.publish("lan/r", f"env seq={i}i {RECENT_NS + i}") for i in range(100)]
            await wait_for(lambda: device.acked >= set(before), 20, "acks before the restart")
            await wait_for(lambda: len(seqs()) >= 100, 10, "messages passed on before the restart")
            await asyncio.to_thread(mosquitto.stop)
            during = [device.publish("lan/r", f"env seq={i}i {RECENT_NS + i}") for i in range(100, 200)]
            await wait_for(lambda: device.acked >= set(during), 20, "acks while the broker is down")
            assert len(await stored_values(reader, "env")) == 200
            await asyncio.to_thread(mosquitto.start)
            await wait_for(lambda: seqs() == set(range(200)), 30, "every message passed on")
        finally:
            device.close()
        assert reader.forwarded == 200
        assert reader.health()["lan"]["forward_failures"] == 0

    try:
        run_lan(mosquitto, tmp_path, scenario, store='[store]\nwal_sync = "200ms"')
    finally:
        subscriber.close()


V5_PROTOCOL_ERRORS = {
    # name: (packets after a valid v5 CONNECT, counter, DISCONNECT reason expected)
    "wildcard topic [MQTT-3.3.2-2]": (publish_packet("lan/+/x", b"v=1", 1, 1, 5), "invalid_topics", 0x90),
    "invalid UTF-8 topic v5 [MQTT-1.5.4-1]": (publish_packet(b"lan/\xff\xfe", b"v=1", 1, 1, 5),
                                              "malformed_packets", 0x81),
    "NUL in topic v5 [MQTT-1.5.4-2]": (publish_packet(b"lan/a\x00b", b"v=1", 1, 1, 5),
                                       "malformed_packets", 0x81),
    "oversized packet v5 [MQTT-3.2.2-15]": (publish_packet("lan/big", b"x" * 5000, 1, 1, 5),
                                            "oversized_packets", 0x95),
    "QoS 3 [MQTT-3.3.1-4]": (mqtt_packet(3, 0x06, b"\x00\x05lan/x\x00\x01\x00"), "malformed_packets", 0x81),
    "packet id 0 [MQTT-2.2.1-3]": (publish_packet("lan/x", b"v=1", 1, 0, 5), "malformed_packets", 0x81),
    "second CONNECT [MQTT-3.1.0-2]": (connect_packet("again", USER, PASSWORD, 5), "malformed_packets", 0x82),
    "bad PUBREL flags [MQTT-2.2.2-2]": (mqtt_packet(6, 0, b"\x00\x01"), "malformed_packets", 0x81),
    "Remaining Length of five bytes": (b"\x30\xff\xff\xff\xff\x01", "malformed_packets", 0x81),
}


@pytest.mark.parametrize("case", sorted(V5_PROTOCOL_ERRORS))
def test_bad_packets_close_the_connection_and_cost_others_nothing(mosquitto, tmp_path, case):
    packet, counter, reason = V5_PROTOCOL_ERRORS[case]
    n = 200

    async def scenario(reader, port):
        device = await asyncio.to_thread(Device, port, "good-device")
        try:
            mids = []
            for i in range(n // 2):
                mids.append(device.publish("lan/good", f"good seq={i}i {RECENT_NS + i}"))

            def bad_client() -> bytes:
                raw = RawClient(port)
                raw.send(connect_packet("bad-client", USER, PASSWORD, 5))
                assert raw.read_packet()[1] == 0, "CONNACK refused the valid CONNECT"
                raw.send(packet)
                answer = raw.closed_by_server()
                raw.close()
                return answer

            answer = await asyncio.to_thread(bad_client)
            for i in range(n // 2, n):
                mids.append(device.publish("lan/good", f"good seq={i}i {RECENT_NS + i}"))
            await wait_for(lambda: device.acked >= set(mids), 20, "the good device's acks")
            assert len(await stored_values(reader, "good")) == n
        finally:
            device.close()
        # v5 4.13: a DISCONNECT with the reason code, then the connection closes.
        assert answer[:1] == b"\xe0" and answer[2] == reason, answer[:20]
        lan = reader.health()["lan"]
        assert lan[counter] == 1, lan

    run_lan(mosquitto, tmp_path, scenario, extra='max_packet_size = "4KiB"')


def test_v311_invalid_utf8_topic_closes_without_disconnect(mosquitto, tmp_path):
    async def scenario(reader, port):
        def client() -> bytes:
            raw = RawClient(port)
            raw.send(connect_packet("v3", USER, PASSWORD, 4))
            assert raw.read(4) == b"\x20\x02\x00\x00"
            raw.send(publish_packet(b"lan/\xc3\x28", b"v=1", 1))   # v3 [MQTT-1.5.3-1]
            return raw.closed_by_server()

        assert await asyncio.to_thread(client) == b""   # 3.1.1 servers only close
        assert reader.health()["lan"]["malformed_packets"] == 1
        assert reader.messages_received == 0

    run_lan(mosquitto, tmp_path, scenario)


def test_wrong_passwords_are_refused_rate_limited_and_never_logged(mosquitto, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="gateway.readers.mqtt")

    async def scenario(reader, port):
        def attempt(password: str, version: int = 4) -> bytes:
            raw = RawClient(port)
            raw.send(connect_packet("guess", USER, password, version))
            answer = raw.closed_by_server() if password != PASSWORD else raw.read(4)
            raw.close()
            return answer

        for i in range(3):
            assert await asyncio.to_thread(attempt, f"wrong-{i}") == b"\x20\x02\x00\x04"   # v3 3.2.2.3
        # The limit is reached: even the right password is refused for a minute (v3 code 5,
        # v5 0x9F Connection rate exceeded).
        assert await asyncio.to_thread(attempt, PASSWORD) == b"\x20\x02\x00\x05"
        v5 = await asyncio.to_thread(attempt, "wrong-v5", 5)
        assert v5[:4] == b"\x20\x03\x00\x9f"
        lan = reader.health()["lan"]
        assert lan["wrong_passwords"] == 3 and lan["refused_rate_limited"] == 2

    run_lan(mosquitto, tmp_path, scenario, extra="auth_failures_per_minute = 3")
    text = caplog.text
    assert "wrong password for user 'sensor' from 127.0.0.1" in text
    assert "wrong-0" not in text and PASSWORD not in text


def test_connect_flood_is_bounded_and_silent_connections_time_out(mosquitto, tmp_path):
    async def scenario(reader, port):
        device = await asyncio.to_thread(Device, port, "steady-device")
        try:
            await wait_for(lambda: device.connect_result is not None, 10, "CONNACK")
            flood = [await asyncio.to_thread(RawClient, port) for _ in range(12)]
            # Three slots were left (max_connections 4): the other nine are closed unread.
            answers = await asyncio.to_thread(lambda: [c.closed_by_server() for c in flood])
            assert answers == [b""] * 12   # the three idle ones after connect_timeout
            mids = [device.publish("lan/steady", f"steady seq={i}i {RECENT_NS + i}") for i in range(50)]
            await wait_for(lambda: device.acked >= set(mids), 20, "the steady device's acks")
        finally:
            device.close()
        lan = reader.health()["lan"]
        assert lan["refused_busy"] == 9 and lan["connect_timeouts"] == 3, lan

    run_lan(mosquitto, tmp_path, scenario, extra='max_connections = 4\nconnect_timeout = "1s"')


@pytest.mark.parametrize("after_ping", ["silence", "one packet byte by byte"])
def test_client_that_never_pings_is_closed_after_one_and_a_half_keepalives(mosquitto, tmp_path,
                                                                           after_ping):
    # v5 [MQTT-3.1.2-22]. Keep alive counts from the last complete packet: bytes that never make
    # one do not keep a connection alive either.
    async def scenario(reader, port):
        def idle() -> bytes:
            raw = RawClient(port)
            raw.send(connect_packet("idle", USER, PASSWORD, 5, keepalive=1))
            raw.read_packet()
            raw.send(mqtt_packet(12, 0, b""))             # one PINGREQ is answered ...
            assert raw.read(2) == b"\xd0\x00"
            if after_ping != "silence":                   # ... then no whole packet
                packet = publish_packet("lan/slow", b"slow v=1i " + b" " * 300, 1, 1, 5)
                for i in range(len(packet) - 1):   # a byte at a time until the server answers
                    if select.select([raw.sock], [], [], 0.3)[0]:
                        break
                    raw.send(packet[i:i + 1])
            return raw.closed_by_server()

        answer = await asyncio.to_thread(idle)
        assert answer[:1] == b"\xe0" and answer[2] == 0x8D   # Keep Alive timeout
        assert reader.health()["lan"]["keepalive_timeouts"] == 1 and reader.messages_received == 0

    run_lan(mosquitto, tmp_path, scenario)


def test_packets_cut_and_joined_anyhow_are_each_stored_and_acked_once_in_order(mosquitto, tmp_path):
    # The endpoint reads what arrived (up to 64 KiB) and parses every packet in it: a packet
    # larger than a read, packets arriving byte by byte and a burst in one write all come out
    # whole, and the acks leave in the order the PUBLISHes came.
    big = "\n".join(f"big,n={i} v={i}i {RECENT_NS + i}" for i in range(2500)).encode()
    small = [publish_packet("lan/small", f"small seq={i}i {RECENT_NS + i}".encode(), 1, i + 1, 4)
             for i in range(300)]
    stream = publish_packet("lan/big", big, 1, 1000, 4)
    assert len(stream) > 65536

    async def scenario(reader, port):
        def client() -> list[int]:
            raw = RawClient(port)
            raw.send(connect_packet("pieces", USER, PASSWORD, 4))
            assert raw.read(4) == b"\x20\x02\x00\x00"
            for i in range(0, len(stream), 7000):
                raw.send(stream[i:i + 7000])
            for byte in b"".join(small[:50]):
                raw.send(bytes((byte,)))
            raw.send(b"".join(small[50:]) + mqtt_packet(12, 0, b""))
            answers = raw.read(301 * 4 + 2)
            raw.send(mqtt_packet(14, 0, b""))
            raw.close()
            packets, used, missing = p.split_packets(answers, 1 << 20)
            assert (used, missing) == (len(answers), 0)
            assert [answers[s - 2:e] for f, s, e in packets if f == 0xD0] == [b"\xd0\x00"]
            return [int.from_bytes(answers[s:e], "big") for f, s, e in packets if f == 0x40]

        assert await asyncio.to_thread(client) == [1000] + list(range(1, 301))
        assert len(await stored_values(reader, "big")) == 2500
        assert len(await stored_values(reader, "small")) == 300
        lan = reader.health()["lan"]
        assert lan["messages"] == 301 and lan["malformed_packets"] == 0

    run_lan(mosquitto, tmp_path, scenario)


@pytest.mark.slow
def test_slow_reader_is_not_read_and_then_closed(mosquitto, tmp_path):
    async def scenario(reader, port):
        reader.listener.write_buffer_high = 1024

        def slow() -> int:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
            sock.connect(("127.0.0.1", port))
            sock.sendall(connect_packet("slow", USER, PASSWORD, 4, keepalive=2))
            sock.settimeout(30)
            sent = 0
            try:   # PINGREQs, never reading a PINGRESP, until the server gives up on us
                while True:
                    sock.sendall(b"\xc0\x00" * 512)
                    sent += 512
            except OSError:
                return sent
            finally:
                sock.close()

        await asyncio.to_thread(slow)
        await wait_for(lambda: reader.health()["lan"]["slow_readers"] == 1, 30, "slow reader closed")

    run_lan(mosquitto, tmp_path, scenario)


def test_receive_maximum_exceeded_is_a_protocol_error(mosquitto, tmp_path):
    async def scenario(reader, port):
        def eager() -> bytes:
            raw = RawClient(port)
            raw.send(connect_packet("eager", USER, PASSWORD, 5))
            raw.read_packet()
            raw.send(b"".join(publish_packet("lan/e", f"e v={i}i".encode(), 1, i + 1, 5) for i in range(4)))
            return raw.closed_by_server()

        answer = await asyncio.to_thread(eager)
        assert b"\xe0" in answer and answer[answer.index(b"\xe0") + 2] == 0x93
        assert reader.health()["lan"]["receive_maximum_exceeded"] == 1

    # wal_sync of 2 s: none of the first three is acknowledged before the fourth arrives.
    run_lan(mosquitto, tmp_path, scenario, extra="receive_maximum = 3", store='[store]\nwal_sync = "2s"')


def test_subscribe_is_refused_per_filter(mosquitto, tmp_path):
    async def scenario(reader, port):
        def subscriber() -> bytes:
            raw = RawClient(port)
            raw.send(connect_packet("sub", USER, PASSWORD, 4))
            raw.read(4)
            raw.send(mqtt_packet(8, 2, b"\x00\x09" + b"\x00\x03a/b\x01" + b"\x00\x01#\x00"))
            return raw.read(6)

        assert await asyncio.to_thread(subscriber) == b"\x90\x04\x00\x09\x80\x80"   # v3 3.9.3
        assert reader.health()["lan"]["subscribe_refused"] == 1

    run_lan(mosquitto, tmp_path, scenario)


def test_qos2_id_survives_a_restart_so_a_resend_is_not_stored_twice(mosquitto, tmp_path):
    passwd = password_file(tmp_path, {USER: PASSWORD})
    port = free_port()
    config = lan_config(mosquitto, port, passwd)
    session = b"\x05\x11\x00\x00\x0e\x10"   # properties: Session Expiry Interval 3600 s

    def v5_connect(raw) -> bytes:
        raw.send(connect_packet("q2", USER, PASSWORD, 5, clean=False, properties=session))
        return raw.read_packet()

    async def first_life():
        store, readers = await start_gateway(config, tmp_path / "data")

        def publish() -> tuple[bytes, bytes]:
            raw = RawClient(port)
            connack = v5_connect(raw)
            raw.send(publish_packet("lan/q2", b"q2 v=1i", 2, 7, 5))   # no timestamp: arrival time
            pubrec = raw.read(4)
            raw.close()   # gone before PUBREL
            return connack, pubrec

        connack, pubrec = await asyncio.to_thread(publish)
        assert connack[:2] == b"\x00\x00" and pubrec == b"\x50\x02\x00\x07"
        await stop_gateway(store, readers)

    async def second_life():
        store, (reader,) = await start_gateway(config, tmp_path / "data")

        def resend() -> tuple[bytes, bytes, bytes, bytes]:
            raw = RawClient(port)
            connack = v5_connect(raw)
            raw.send(publish_packet("lan/q2", b"q2 v=1i", 2, 7, 5, dup=True))
            pubrec = raw.read(4)
            raw.send(mqtt_packet(6, 2, b"\x00\x07"))
            pubcomp = raw.read(4)
            raw.send(publish_packet("lan/q2", b"q2 v=2i", 2, 7, 5))   # the id reused, a new message
            again = raw.read(4)
            raw.close()
            return connack, pubrec, pubcomp, again

        connack, pubrec, pubcomp, again = await asyncio.to_thread(resend)
        assert connack[:2] == b"\x01\x00"   # Session Present after the restart
        assert pubrec == b"\x50\x02\x00\x07" and pubcomp == b"\x70\x02\x00\x07"
        assert again == b"\x50\x02\x00\x07"
        await wait_for(lambda: reader.messages_stored == 1, 10, "the new message stored")
        values = sorted((await stored_values(reader, "q2")).values())
        assert reader.health()["lan"]["duplicates_qos2"] == 1
        await stop_gateway(store, [reader])
        return values

    asyncio.run(first_life())
    assert asyncio.run(second_life()) == [1, 2]


def test_tls_endpoint_takes_a_verifying_paho_client(mosquitto, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)

    async def scenario(reader, port):
        def publish() -> bool:
            c = paho.Client(CallbackAPIVersion.VERSION2, client_id="tls-device")
            c.username_pw_set(USER, PASSWORD)
            c.tls_set(ca_certs=str(cert))
            c.connect("127.0.0.1", port)
            c.loop_start()
            try:
                return c.publish("lan/tls", f"tls v=1i {RECENT_NS}", qos=1).wait_for_publish(20) or True
            finally:
                c.disconnect()
                c.loop_stop()

        await asyncio.to_thread(publish)
        assert len(await stored_values(reader, "tls")) == 1

    run_lan(mosquitto, tmp_path, scenario, extra=f'tls_cert_file = "{cert}"\ntls_key_file = "{key}"')
