"""A stream with 10 % malformed payloads: every good point is stored, every bad one counted."""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from mqtt_harness import RECENT_NS, start_gateway, stop_gateway, wait_for

pytestmark = pytest.mark.integration

BASE_NS = RECENT_NS
MESSAGES = 1000


def config(url: str) -> str:
    return f'''
[[readers.mqtt]]
server = "{url}"
client_id = "bad-payloads"
max_payload_size = "1KiB"
dead_letters = 5
batch_linger = "10ms"
[[readers.mqtt.subscriptions]]
topic = "lp/+"
format = "line"
template = "lp/{{dev}}"
[[readers.mqtt.subscriptions]]
topic = "js/+"
format = "json"
measurement = "env"
[readers.mqtt.subscriptions.json]
time_key = "ts"
time_format = "unix_ms"
tag_keys = ["room"]
[[readers.mqtt.subscriptions]]
topic = "val/#"
format = "value"
template = "val/{{dev}}/{{_field}}"
measurement = "val"
'''


def stream():
    """(topic, payload, expected reason or None, expected points) in publishing order."""
    rng = random.Random(5)
    bad_kinds = [
        ("lp/d1", b"this is not line protocol", "unparseable"),
        ("lp/d2", b"m v=1i %d\nm v=\n" % (BASE_NS - 1), "unparseable"),   # one good, one bad
        ("js/d3", b'{"ts": 1, "t": ', "unparseable"),
        ("js/d4", b'{"ts": "noon", "t": 1}', "wrong_type"),
        ("js/d5", b"[1, 2, 3]", "wrong_type"),
        ("val/d6/t", b"twenty", "unparseable"),
        ("val/d7", b"1.5", "topic_mismatch"),
        ("val/d8/t/extra", b"1.5", "topic_mismatch"),
        ("lp/d9", b"m v=1 " + b"9" * 1100, "oversized"),
    ]
    out = []
    for i in range(MESSAGES):
        if i % 10 == 9:
            topic, payload, reason = bad_kinds[(i // 10) % len(bad_kinds)]
            points = [("m,dev=d2 v", BASE_NS - 1, 1)] if topic == "lp/d2" else []
            out.append((topic, payload, reason, points))
            continue
        kind = rng.choice(("lp", "js", "val"))
        dev = f"d{rng.randrange(20)}"
        if kind == "lp":
            ts = BASE_NS + i
            out.append((f"lp/{dev}", f"m v={i}i {ts}".encode(), None, [(f"m,dev={dev} v", ts, i)]))
        elif kind == "js":
            ts_ms = BASE_NS // 1_000_000 + i
            room = f"r{i % 3}"
            body = json.dumps({"ts": ts_ms, "room": room, "t": i / 4, "note": "dropped"}).encode()
            out.append((f"js/{dev}", body, None, [(f"env,room={room} t", ts_ms * 1_000_000, i / 4)]))
        else:
            out.append((f"val/{dev}/temp", str(i).encode(), None, [(f"val,dev={dev} temp", None, float(i))]))
    return out


def test_malformed_payloads_are_counted_and_good_points_stored(mosquitto, publisher, tmp_path):
    messages = stream()

    async def scenario():
        store, (reader,) = await start_gateway(config(mosquitto.url), tmp_path / "data")
        try:
            await wait_for(lambda: reader.connection.connected, 10, "the reader to connect")
            await wait_for(lambda: all(s["granted"] is not None for s in reader.health()["subscriptions"]),
                           10, "SUBACK")
            for topic, payload, _, _ in messages:
                publisher.publish(topic, payload)
            await wait_for(lambda: reader.messages_stored == MESSAGES, 30, "every message")
            return reader.health(), await store.scan("raw")
        finally:
            await stop_gateway(store, [reader])

    health, columns = asyncio.run(scenario())

    stored = {}
    for cols in columns:
        for ts, value in zip(cols.timestamps, cols.values):
            stored[(cols.key, ts)] = value
    expected_points = [p for _, _, _, points in messages for p in points]
    timed = {(key, ts): value for key, ts, value in expected_points if ts is not None}
    for (key, ts), value in timed.items():
        assert stored.get((key, ts)) == value, (key, ts)
    arrival = sorted((k, v) for (k, ts), v in stored.items() if k.startswith("val,"))
    assert arrival == sorted((k, v) for k, ts, v in expected_points if ts is None)
    # The partly good message repeats one point (same series and time): it is stored once.
    assert len(stored) == len(timed) + len(arrival)

    expected_reasons: dict[str, int] = {}
    expected_topics: dict[tuple[str, str], int] = {}
    for topic, _, reason, _ in messages:
        if reason:
            expected_reasons[reason] = expected_reasons.get(reason, 0) + 1
            expected_topics[(reason, topic)] = expected_topics.get((reason, topic), 0) + 1
    assert sum(expected_reasons.values()) == MESSAGES // 10
    assert health["bad_messages"] == MESSAGES // 10
    assert health["bad_by_reason"] == expected_reasons
    got_topics = {(r, t): n for r, topics in health["bad_by_topic"].items() for t, n in topics.items()}
    assert got_topics == expected_topics
    assert health["messages_received"] == health["messages_stored"] == MESSAGES
    assert health["connected"] is True and health["last_message_at"] is not None

    last_bad = [(t, r) for t, _, r, _ in messages if r][-5:]
    letters = health["dead_letters"]
    assert [(d["topic"], d["reason"]) for d in letters] == last_bad
    assert all(d["error"] for d in letters)
    oversized = [d for d in letters if d["reason"] == "oversized"]
    for d in oversized:
        assert d["payload_bytes"] > 1024 and len(d["payload"]) <= 200


def test_points_older_than_the_retention_are_acked_and_counted(mosquitto, publisher, tmp_path):
    old_ns = BASE_NS - 40 * 86400 * 10**9      # the raw bucket keeps 30 days

    async def scenario():
        store, (reader,) = await start_gateway(config(mosquitto.url), tmp_path / "data")
        try:
            await wait_for(lambda: all(s["granted"] is not None for s in reader.health()["subscriptions"]),
                           10, "SUBACK")
            publisher.publish("lp/d1", f"m v=1i {old_ns}\nm v=2i {BASE_NS}")
            await wait_for(lambda: reader.messages_stored == 1, 10, "the message")
            await wait_for(lambda: publisher.acked == 1, 10, "the publisher's ack")
            return reader.health(), await store.scan("raw")
        finally:
            await stop_gateway(store, [reader])

    health, columns = asyncio.run(scenario())
    assert (health["points_too_old"], health["points_stored"], health["bad_messages"]) == (1, 1, 0)
    assert [(c.key, list(c.timestamps)) for c in columns] == [("m,dev=d1 v", [BASE_NS])]
