"""Acknowledgements: sent only after the store write returned, and in the order of receipt even
when a later write finishes first (MQTT expects PUBACKs in PUBLISH order)."""

from __future__ import annotations

import asyncio

import pytest

from mqtt_harness import start_gateway, stop_gateway, wait_for

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
        client = reader.connection._client
        real_ack = client.ack
        client.ack = lambda mid, qos: (events.append(("ack", mid)), real_ack(mid, qos))[1]
        received: list[int] = []
        on_message = reader.connection._on_message
        reader.connection._on_message = lambda m, g: (received.append(m.mid), on_message(m, g))
        try:
            await wait_for(lambda: reader.connection.connected, 10, "the connection")
            await wait_for(lambda: reader.connection.subscriptions[0]["granted"] is not None, 10, "SUBACK")
            for i in range(MESSAGES):
                publisher.publish(f"acks/{i % 3}", f"a,s={i % 3} v={i}i {1_000_000 + i}")
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
