"""Acknowledgements: sent only after the store write returned, and in the order of receipt even
when a later write finishes first (MQTT expects PUBACKs in PUBLISH order)."""

from __future__ import annotations

import asyncio

import pytest

from mqtt_harness import RECENT_NS, start_gateway, stop_gateway, wait_for

pytestmark = pytest.mark.integration

MESSAGES = 200


def test_acks_follow_durable_writes_in_receipt_order(mosquitto, publisher, tmp_path):
    text = f'''
[store]
wal_sync = "always"
[[readers.mqtt]]
server = "{mosquitto.url}"
client_id = "acks"
max_batch_messages = 10
batch_linger = "5ms"
max_writes_in_flight = 8
[[readers.mqtt.subscriptions]]
topic = "acks/#"
format = "line"
'''
    events: list[tuple[str, object]] = []

    async def scenario():
        store, (reader,) = await start_gateway(text, tmp_path / "data")
        real_write = store.write
        writes = 0

        async def write(batch, bucket="raw"):
            # The real store, with the first write held back so later ones finish first.
            nonlocal writes
            writes += 1
            first = writes == 1
            if first:
                await asyncio.sleep(0.5)
            result = await real_write(batch, bucket)
            events.append(("durable", len(batch)))
            return result

        store.write = write
        # The PUBACKs as they enter paho's send queue (a loop turn's acks are one entry).
        client = reader.connection._client
        real_queue = client._packet_queue

        def queue(command, packet, mid, qos, info=None):
            if command & 0xF0 == 0x40:
                events.extend(("ack", int.from_bytes(packet[i + 2:i + 4], "big"))
                              for i in range(0, len(packet), 4))
            return real_queue(command, packet, mid, qos, info)

        client._packet_queue = queue
        received: list[int] = []
        on_message = reader.connection._on_message
        reader.connection._on_message = lambda m, g: (received.append(m.mid), on_message(m, g))
        try:
            await wait_for(lambda: reader.connection.connected, 10, "the connection")
            await wait_for(lambda: reader.connection.subscriptions[0]["granted"] is not None, 10, "SUBACK")
            for i in range(MESSAGES):
                publisher.publish(f"acks/{i % 3}", f"a,s={i % 3} v={i}i {RECENT_NS + i}")
            await wait_for(lambda: reader.messages_stored == MESSAGES, 20, "every message")
            await wait_for(lambda: publisher.acked == MESSAGES, 20, "the publisher's acks")
            return received, writes, await store.scan("raw", measurement="a")
        finally:
            await stop_gateway(store, [reader])

    received, writes, columns = asyncio.run(scenario())
    assert writes > 3                                  # several batches were in flight
    acked = [mid for kind, mid in events if kind == "ack"]
    assert acked == received                           # every message, in receipt order
    # No ack went out before the write that holds its message was durable.
    durable_points = 0
    acks_seen = 0
    for kind, value in events:
        if kind == "durable":
            durable_points += value
        else:
            acks_seen += 1
            assert acks_seen <= durable_points
    assert sum(len(c) for c in columns) == MESSAGES


def test_a_qos0_flood_against_a_slow_store_pauses_reading_instead_of_queueing(
        mosquitto, publisher, tmp_path):
    """Memory stays bounded: past the pause mark the reader stops reading the socket (TCP
    back-pressure) until writes finish, and still stores every message."""
    text = f'''
[store]
wal_sync = "always"
[[readers.mqtt]]
server = "{mosquitto.url}"
client_id = "flood"
receive_maximum = 100
max_batch_messages = 20
batch_linger = "5ms"
max_writes_in_flight = 2
[[readers.mqtt.subscriptions]]
topic = "flood/#"
qos = 0
format = "line"
'''
    flood = 2000
    peak = 0

    async def scenario():
        nonlocal peak
        store, (reader,) = await start_gateway(text, tmp_path / "data")
        real_write = store.write

        async def slow_write(batch, bucket="raw"):
            await asyncio.sleep(0.05)        # a slow card: each write takes a while
            return await real_write(batch, bucket)

        store.write = slow_write
        on_message = reader.connection._on_message

        def watch(message, generation):
            nonlocal peak
            on_message(message, generation)
            peak = max(peak, reader.health()["messages_pending"])

        reader.connection._on_message = watch
        try:
            await wait_for(lambda: reader.connection.subscriptions[0]["granted"] is not None, 10, "SUBACK")
            for i in range(flood):
                publisher.publish(f"flood/{i % 5}", f"f,s={i % 5} v={i}i {RECENT_NS + i}", qos=0)
            await wait_for(lambda: reader.messages_stored == flood, 60, "every message")
            return await store.scan("raw", measurement="f")
        finally:
            await stop_gateway(store, [reader])

    columns = asyncio.run(scenario())
    assert sum(len(c) for c in columns) == flood
    assert peak == 100                         # max(receive_maximum, 2 * max_batch_messages)


def test_a_qos2_subscription_is_taken_at_qos1_and_stores_every_message(mosquitto, publisher, tmp_path):
    text = f'''
[[readers.mqtt]]
server = "{mosquitto.url}"
client_id = "qos2"
[[readers.mqtt.subscriptions]]
topic = "q2/#"
qos = 2
format = "line"
'''

    async def scenario():
        store, (reader,) = await start_gateway(text, tmp_path / "data")
        try:
            await wait_for(lambda: reader.connection.subscriptions[0]["granted"] is not None, 10, "SUBACK")
            for i in range(50):
                publisher.publish("q2/a", f"q v={i}i {RECENT_NS + i}", qos=2)
            await wait_for(lambda: reader.messages_stored == 50, 20, "every message")
            await wait_for(lambda: publisher.acked == 50, 20, "the publisher's acks")
            return reader.health(), await store.scan("raw", measurement="q")
        finally:
            await stop_gateway(store, [reader])

    health, columns = asyncio.run(scenario())
    assert health["subscriptions"][0]["qos"] == health["subscriptions"][0]["granted"] == 1
    assert [list(c.values) for c in columns] == [list(range(50))]
