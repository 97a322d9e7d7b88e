"""The LAN endpoint's packet codec: what clients encode parses back to the same fields, and any
bytes at all end in MalformedPacket (or the end of the stream), never another exception."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from gateway.readers.mqtt import packets as p
from gateway.readers.mqtt.sessions import SessionJournal
from mqtt_harness import connect_packet, mqtt_packet, publish_packet

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
topics = st.text(st.characters(blacklist_characters="+#\x00", blacklist_categories=("Cs",)),
                 min_size=1, max_size=40)


def split(packet: bytes, max_size: int = 1 << 20) -> tuple[int, int, bytes]:
    """The one packet in ``packet`` as (type, flags, body)."""
    [(first, start, end)], used, missing = p.split_packets(packet, max_size)
    assert (used, missing) == (len(packet), 0)
    return first >> 4, first & 0x0F, packet[start:end]


@FUZZ
@given(client_id=st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=30),
       user=st.none() | st.text(max_size=20).filter(lambda s: "\x00" not in s),
       password=st.text(max_size=20).filter(lambda s: "\x00" not in s),
       version=st.sampled_from([4, 5]), keepalive=st.integers(0, 65535), clean=st.booleans())
def test_connect_roundtrip(client_id, user, password, version, keepalive, clean):
    kind, flags, body = split(connect_packet(client_id, user, password if user is not None else None,
                                             version, keepalive, clean))
    assert (kind, flags) == (p.CONNECT, 0)
    c = p.parse_connect(body)
    assert (c.protocol, c.client_id, c.keepalive, c.clean_start) == (version, client_id, keepalive, clean)
    assert c.username == user
    assert c.password == (password.encode() if user is not None else None)


@FUZZ
@given(topic=topics, payload=st.binary(max_size=300), qos=st.integers(0, 2),
       packet_id=st.integers(1, 65535), version=st.sampled_from([4, 5]), dup=st.booleans())
def test_publish_roundtrip(topic, payload, qos, packet_id, version, dup):
    dup = dup and qos > 0
    kind, flags, body = split(publish_packet(topic, payload, qos, packet_id, version, dup))
    msg = p.parse_publish(flags, body, version)
    assert kind == p.PUBLISH
    assert (msg.topic, msg.payload, msg.qos, msg.dup) == (topic, payload, qos, dup)
    assert msg.packet_id == (packet_id if qos else 0)


@FUZZ
@given(data=st.binary(max_size=200), flags=st.integers(0, 15), version=st.sampled_from([4, 5]))
def test_any_bytes_are_a_packet_or_malformed(data, flags, version):
    for parse in (p.parse_connect, lambda b: p.parse_publish(flags, b, version),
                  lambda b: p.parse_packet_id(b, "PUBREL", version),
                  lambda b: p.parse_subscribe_ids(b, version, "SUBSCRIBE")):
        try:
            parse(data)
        except p.MalformedPacket as e:
            assert str(e)


@FUZZ
@given(stream=st.binary(max_size=64), max_size=st.integers(2, 80), limit=st.integers(0, 3))
def test_any_stream_splits_into_whole_packets_and_a_rest(stream, max_size, limit):
    try:
        packets, used, missing = p.split_packets(stream, max_size, limit)
    except p.MalformedPacket as e:
        assert str(e)
        return
    pos = 0
    for first, start, end in packets:   # back to back, each within its own Remaining Length
        assert first == stream[pos] and pos + 2 <= start <= pos + 5 and end - pos <= max_size
        pos = end
    assert used == pos <= len(stream) and (limit == 0 or len(packets) <= limit)
    if missing:   # the rest is one packet, complete with exactly ``missing`` more bytes
        assert limit == 0 or len(packets) < limit
        more, _, _ = p.split_packets(stream[used:] + b"\0" * missing, max_size)
        assert more[0][2] == len(stream) - used + missing


@FUZZ
@given(sizes=st.lists(st.integers(0, 300) | st.integers(16000, 20000), min_size=1, max_size=6),
       cut=st.integers(0, 130000))
def test_packets_cut_anywhere_split_the_same(sizes, cut):
    stream = b"".join(mqtt_packet(3, 2, bytes([i]) * n) for i, n in enumerate(sizes))
    cut = min(cut, len(stream))
    head, used, missing = p.split_packets(stream[:cut], 1 << 20)
    tail = stream[used:]
    rest, used2, _ = p.split_packets(tail, 1 << 20)
    assert [stream[s:e] for _, s, e in head] + [tail[s:e] for _, s, e in rest] == \
        [bytes([i]) * n for i, n in enumerate(sizes)]
    assert used + used2 == len(stream)
    if missing:   # a whole fixed header: exactly the bytes the packet still lacks
        assert cut + missing == used + len(mqtt_packet(3, 2, b"x" * sizes[len(head)]))


def test_remaining_length_limits():
    assert p.split_packets(b"\x30\x80\x80\x80", 1 << 20) == ([], 0, 0)   # the header goes on
    with pytest.raises(p.MalformedPacket, match="four bytes"):
        split(b"\x30\x80\x80\x80\x80\x01")
    with pytest.raises(p.MalformedPacket) as e:
        split(mqtt_packet(3, 0, b"x" * 100), 64)
    assert e.value.reason == p.PACKET_TOO_LARGE


def test_server_packets_have_the_standard_bytes():
    assert p.encode_connack(p.V311, True, 0) == b"\x20\x02\x01\x00"
    assert p.encode_ack(p.PUBACK, 0x1234, p.V5) == b"\x40\x02\x12\x34"
    assert p.encode_ack(p.PUBCOMP, 7, p.V5, p.PACKET_ID_NOT_FOUND) == b"\x70\x03\x00\x07\x92"
    assert p.encode_disconnect(p.KEEP_ALIVE_TIMEOUT) == b"\xe0\x02\x8d\x00"
    connack = p.encode_connack(p.V5, False, 0, {p.RECEIVE_MAXIMUM: 1000})
    assert connack == b"\x20\x06\x00\x00\x03\x21\x03\xe8"


def test_session_journal_keeps_state_and_skips_torn_and_damaged_lines(tmp_path):
    path = str(tmp_path / "j" / "lan.sessions")

    async def write():
        journal = SessionJournal(path, 10)
        journal.open()
        state, present = await journal.begin("dev", False, 3600)
        assert not present
        await journal.received([(state, 5), (state, 6)])
        assert await journal.released(state, 5)
        other, _ = await journal.begin("gone", False, 3600)
        journal.drop("gone")
        await journal.begin("volatile", True, 0)
        journal.close()

    asyncio.run(write())
    with open(path, "ab") as f:
        f.write(b"00000000 R 646576 9\n")      # damaged: checksum does not match
        f.write(b"1234abcd R 6465")            # torn: no newline
    journal = SessionJournal(path, 10)
    journal.open()
    assert set(journal.sessions) == {"dev"}
    assert journal.sessions["dev"].received == {6}
    assert journal.damaged_lines == 1
    journal.close()
    journal = SessionJournal(path, 10)     # the rewritten file reads back the same
    journal.open()
    assert journal.sessions["dev"].received == {6} and journal.damaged_lines == 0
    journal.close()


def test_journal_example_of_the_format_page(tmp_path):
    import pathlib
    import re

    page = pathlib.Path(__file__).resolve().parents[3] / "docs" / "format" / "mqtt-sessions.md"
    example = re.findall(r"^[0-9a-f]{8} [SR] .*$", page.read_text(), re.M)
    path = tmp_path / "example.sessions"
    path.write_text("\n".join(example) + "\n")
    journal = SessionJournal(str(path), 10)
    journal.open()
    assert journal.damaged_lines == 0
    assert journal.sessions["dev"].expiry == 3600 and journal.sessions["dev"].received == {6}
    journal.close()
