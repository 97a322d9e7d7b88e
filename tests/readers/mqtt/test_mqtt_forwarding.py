"""Passing LAN messages on (gateway/readers/mqtt/forwarding.py): the PUBLISH encoding read back
by the endpoint's own parser, acks, resends with DUP after a reconnect, and the bounds."""

from __future__ import annotations

import asyncio

import pytest

from gateway.readers.mqtt import forwarding
from gateway.readers.mqtt import packets as p
from gateway.readers.mqtt.forwarding import Forwarder


def split(buffer: bytes, protocol: int = p.V5) -> list[p.Publish]:
    """The PUBLISH packets in ``buffer``, parsed as the LAN endpoint parses a device's."""
    packets, used, missing = p.split_packets(buffer, 1 << 20)
    assert (used, missing) == (len(buffer), 0)
    assert all(first >> 4 == p.PUBLISH for first, _, _ in packets)
    return [p.parse_publish(first & 0x0F, buffer, protocol, start, end)
            for first, start, end in packets]


@pytest.mark.parametrize("qos,retain,protocol", [(0, False, p.V5), (1, True, p.V5), (1, False, p.V311)])
def test_encoded_publish_parses_back(qos, retain, protocol):
    packet = p.encode_publish("lan/ünï/x", b"v=1 " * 40, qos, retain, 513 if qos else 0, protocol)
    [msg] = split(packet, protocol)
    assert (msg.topic, msg.payload, msg.qos, msg.retain, msg.dup, msg.packet_id) == \
        ("lan/ünï/x", b"v=1 " * 40, qos, retain, False, 513 if qos else 0)


class Link:
    """What the forwarder writes, and packet ids as paho's counter hands them out."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.last_id = 0

    def send(self, data: bytes) -> None:
        self.sent.append(data)

    def next_id(self) -> int:
        self.last_id = self.last_id % 65535 + 1
        return self.last_id


def run(scenario):
    async def main():
        link = Link()
        f = Forwarder(p.V5, link.send, link.next_id)
        await scenario(f, link)

    asyncio.run(main())


def test_a_loop_turns_messages_leave_in_one_write_and_acks_clear_them():
    async def scenario(f, link):
        f.online()
        assert all(f.add("lan/a", f"v={i}".encode(), 1, False) for i in range(5))
        assert f.add("lan/b", b"q0", 0, False)
        await asyncio.sleep(0)
        assert len(link.sent) == 1
        msgs = split(link.sent[0])
        assert [m.payload for m in msgs] == [b"v=0", b"v=1", b"v=2", b"v=3", b"v=4", b"q0"]
        assert [m.packet_id for m in msgs[:5]] == [1, 2, 3, 4, 5] and not any(m.dup for m in msgs)
        assert f.ack(b"\x00\x01") and f.ack(b"\x00\x02\x00")
        assert f.ack(b"\x00\x03\x87")   # refused by the broker: acknowledged, counted
        assert not f.ack(b"\x00\x03") and not f.ack(b"\x00\x09") and not f.ack(b"\x00")
        assert sorted(f.unacked) == [4, 5] and f.acked == 3 and f.failures == 1

    run(scenario)


def test_after_a_reconnect_unacknowledged_messages_go_again_dup_only_if_sent_before():
    async def scenario(f, link):
        f.online()
        f.add("lan/a", b"sent", 1, False)
        await asyncio.sleep(0)
        f.offline()
        assert f.add("lan/a", b"waited", 1, False)
        assert f.add("lan/a", b"qos0 while away", 0, False)
        f.online()
        await asyncio.sleep(0)
        msgs = split(link.sent[-1])
        assert [(m.payload, m.dup, m.packet_id) for m in msgs] == \
            [(b"sent", True, 1), (b"waited", False, 2), (b"qos0 while away", False, 0)]
        f.offline()
        f.online()
        await asyncio.sleep(0)
        assert [m.dup for m in split(link.sent[-1])] == [True, True]

    run(scenario)


def test_messages_not_yet_written_when_the_connection_drops_wait_for_the_next():
    async def scenario(f, link):
        f.online()
        f.add("lan/a", b"q0", 0, False)
        f.add("lan/a", b"q1", 1, False)
        f.offline()   # before the loop turn that would have written them
        await asyncio.sleep(0)
        assert link.sent == [] and list(f.unacked) == [1]
        f.online()
        await asyncio.sleep(0)
        assert [m.payload for m in split(link.sent[-1])] == [b"q1", b"q0"]

    run(scenario)


def test_in_flight_is_bounded_below_the_packet_ids(monkeypatch):
    monkeypatch.setattr(forwarding, "MAX_IN_FLIGHT", 3)

    async def scenario(f, link):
        assert [f.add("lan/a", b"x", q, False) for q in (1, 0, 1, 1)] == [True, True, True, False]
        f.online()
        await asyncio.sleep(0)
        assert f.ack(b"\x00\x01")
        assert f.add("lan/a", b"x", 1, False) and f.add("lan/a", b"x", 1, False)
        assert not f.add("lan/a", b"x", 1, False)
        link.last_id = 1   # the counter wraps onto ids still in flight: they are skipped
        f.ack(b"\x00\x04")
        assert f.add("lan/a", b"y", 1, False) and list(f.unacked) == [2, 3, 4]

    run(scenario)
