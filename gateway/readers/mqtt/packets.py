"""MQTT 3.1.1 and 5.0 packets a server for publishing clients reads and writes.

Written here rather than taken from a library: paho and the other Python packages are clients
(their encoders build CONNECT/PUBLISH, not CONNACK/PUBREC, and their parsers assume a trusted
server); the server side needs only the packets below, and every length in them must be bounded
and checked against what a LAN device sends. :func:`split_packets` finds the packets in what was
read from a connection; the ``parse_*`` functions take a body and raise :class:`MalformedPacket`
naming the field and the rule broken; the ``encode_*`` functions build the server's answers, and
:func:`encode_publish` the PUBLISH the reader sends when it passes a LAN message on (see
:mod:`.forwarding`).

Normative statements are cited as [MQTT-x.y.z-n] of the 3.1.1 (``v3``) or 5.0 (``v5``) standard.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from gateway.errors import GatewayError

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = range(8, 16)
#: Protocol levels: 4 is MQTT 3.1.1, 5 is MQTT 5.0.
V311, V5 = 4, 5
#: The largest Remaining Length four variable-byte digits can express (both versions, 2.2.3).
MAX_REMAINING_LENGTH = 268_435_455

#: v5 reason codes the server sends (section 2.4).
SUCCESS, UNSPECIFIED_ERROR, MALFORMED, PROTOCOL_ERROR = 0x00, 0x80, 0x81, 0x82
UNSUPPORTED_VERSION, BAD_CREDENTIALS, NOT_AUTHORIZED = 0x84, 0x86, 0x87
SERVER_BUSY, KEEP_ALIVE_TIMEOUT, SESSION_TAKEN_OVER = 0x89, 0x8D, 0x8E
TOPIC_NAME_INVALID, PACKET_ID_NOT_FOUND, RECEIVE_MAXIMUM_EXCEEDED = 0x90, 0x92, 0x93
PACKET_TOO_LARGE, QUOTA_EXCEEDED, CONNECTION_RATE_EXCEEDED = 0x95, 0x97, 0x9F
NO_SUBSCRIPTION_EXISTED, CLIENT_ID_INVALID = 0x11, 0x85
#: v3.1.1 CONNACK return codes (3.2.2.3).
V3_ACCEPTED, V3_BAD_VERSION, V3_ID_REJECTED, V3_UNAVAILABLE, V3_BAD_CREDENTIALS, V3_NOT_AUTHORIZED = range(6)

# v5 property identifiers (2.2.2.2) this server reads or writes, with their types.
_BYTE, _U16, _U32, _VARINT, _STR, _BIN, _PAIR = range(7)
PROPERTY_TYPES = {
    0x01: _BYTE, 0x02: _U32, 0x03: _STR, 0x08: _STR, 0x09: _BIN, 0x0B: _VARINT, 0x11: _U32,
    0x12: _STR, 0x13: _U16, 0x15: _STR, 0x16: _BIN, 0x17: _BYTE, 0x18: _U32, 0x19: _BYTE,
    0x1A: _STR, 0x1C: _STR, 0x1F: _STR, 0x21: _U16, 0x22: _U16, 0x23: _U16, 0x24: _BYTE,
    0x25: _BYTE, 0x26: _PAIR, 0x27: _U32, 0x28: _BYTE, 0x29: _BYTE, 0x2A: _BYTE,
}
SESSION_EXPIRY, RECEIVE_MAXIMUM, MAXIMUM_PACKET_SIZE = 0x11, 0x21, 0x27
TOPIC_ALIAS, TOPIC_ALIAS_MAXIMUM, REASON_STRING, USER_PROPERTY = 0x23, 0x22, 0x1F, 0x26
SERVER_KEEP_ALIVE, MAXIMUM_QOS, RETAIN_AVAILABLE = 0x13, 0x24, 0x25
WILDCARD_AVAILABLE, SUB_IDS_AVAILABLE, SHARED_AVAILABLE = 0x28, 0x29, 0x2A
AUTHENTICATION_METHOD = 0x15


class MalformedPacket(GatewayError, ValueError):
    """A packet breaks the protocol. ``reason`` is the v5 reason code of the DISCONNECT that
    answers it (a v3.1.1 client just sees the connection closed)."""

    def __init__(self, message: str, reason: int = MALFORMED) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Connect:
    protocol: int
    client_id: str
    clean_start: bool
    keepalive: int
    username: str | None
    password: bytes | None
    will: bool
    properties: dict = field(default_factory=dict)
    #: (topic, payload, qos, retain) of the Will Message, when ``will``.
    will_message: tuple[str, bytes, int, bool] | None = None


@dataclass(slots=True)
class Publish:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    dup: bool
    packet_id: int
    properties: dict = field(default_factory=dict)


def split_packets(data: bytes, max_size: int,
                  limit: int = 0) -> tuple[list[tuple[int, int, int]], int, int]:
    """The complete packets at the start of ``data`` (at most ``limit`` of them, 0: all), as
    (first byte, body start, body end) offsets into ``data``; the offset where the rest begins;
    and how many bytes the next packet still lacks when its fixed header is complete (else 0).

    One pass over a whole read: the endpoint reads large chunks and parses each packet in place.
    Raises MalformedPacket for a Remaining Length of more than four bytes and PACKET_TOO_LARGE
    past ``max_size`` (the whole packet, v5 3.2.2.3.6) as soon as the fixed header is there."""
    out = []
    pos, end = 0, len(data)
    while pos < end:
        length = data[pos + 1] if pos + 1 < end else 0x80   # the common case: one length byte
        if length < 0x80:
            start = pos + 2
        else:
            length, multiplier, start = 0, 1, pos + 1
            for start in range(pos + 1, min(pos + 5, end)):
                byte = data[start]
                length += (byte & 0x7F) * multiplier
                if not byte & 0x80:
                    start += 1
                    break
                multiplier *= 128
            else:
                if end - pos >= 5:
                    raise MalformedPacket("Remaining Length has more than four bytes (2.2.3)")
                return out, pos, 0   # the fixed header is incomplete
        if start - pos + length > max_size:
            raise MalformedPacket(f"packet of {start - pos + length} bytes is larger than the "
                                  f"maximum of {max_size}", PACKET_TOO_LARGE)
        if start + length > end:
            return out, pos, start + length - end
        out.append((data[pos], start, start + length))
        pos = start + length
        if len(out) == limit:
            break
    return out, pos, 0


def _check_utf8(raw: bytes, what: str) -> str:
    # Ill-formed UTF-8 or U+0000 closes the connection: v3 [MQTT-1.5.3-1] [MQTT-1.5.3-2],
    # v5 [MQTT-1.5.4-1] [MQTT-1.5.4-2]. Python's strict decoder refuses surrogates too.
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MalformedPacket(f"{what} is not valid UTF-8 (byte {e.start})") from None
    if "\0" in text:
        raise MalformedPacket(f"{what} contains U+0000")
    return text


#: The _Body method reading each property type.
_READ = {_BYTE: "u8", _U16: "u16", _U32: "u32", _VARINT: "varint", _STR: "string", _BIN: "binary"}


class _Body:
    """A cursor over a packet body; every read checks the bytes are there."""

    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes, start: int = 0, end: int | None = None) -> None:
        self.data, self.pos, self.end = data, start, len(data) if end is None else end

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > self.end:
            raise MalformedPacket(f"packet ends inside {what}")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        return struct.unpack(">H", self.take(2, what))[0]

    def u32(self, what: str) -> int:
        return struct.unpack(">I", self.take(4, what))[0]

    def varint(self, what: str) -> int:
        value, multiplier = 0, 1
        for _ in range(4):
            byte = self.u8(what)
            value += (byte & 0x7F) * multiplier
            if not byte & 0x80:
                return value
            multiplier *= 128
        raise MalformedPacket(f"{what}: variable byte integer longer than four bytes")

    def binary(self, what: str) -> bytes:
        return self.take(self.u16(what), what)

    def string(self, what: str) -> str:
        return _check_utf8(self.binary(what), what)

    def left(self) -> int:
        return self.end - self.pos

    def properties(self, what: str) -> dict:
        """v5 properties (2.2.2): {id: value}; user properties as a list of pairs."""
        length = self.varint(f"{what} property length")
        if length > self.left():
            raise MalformedPacket(f"{what} property length {length} runs past the packet")
        stop = self.pos + length
        out: dict = {}
        while self.pos < stop:
            ident = self.varint(f"{what} property identifier")
            kind = PROPERTY_TYPES.get(ident)
            if kind is None:
                raise MalformedPacket(f"{what}: unknown property 0x{ident:02x}")
            name = f"{what} property 0x{ident:02x}"
            if kind == _PAIR:
                value = (self.string(name), self.string(name))
            else:
                value = getattr(self, _READ[kind])(name)
            if ident == USER_PROPERTY:
                out.setdefault(ident, []).append(value)
            elif ident in out:   # only user properties may repeat (2.2.2.2)
                raise MalformedPacket(f"{what}: property 0x{ident:02x} appears twice", PROTOCOL_ERROR)
            else:
                out[ident] = value
        if self.pos != stop:
            raise MalformedPacket(f"{what}: a property runs past the property length")
        return out


def parse_connect(body: bytes) -> Connect:
    b = _Body(body)
    name = b.binary("protocol name")
    level = b.u8("protocol level")
    if name != b"MQTT" or level not in (V311, V5):
        # v3 [MQTT-3.1.2-2]: an unsupported level gets CONNACK 0x01 and the connection closes.
        raise MalformedPacket(f"protocol {name[:16]!r} level {level} is not MQTT 3.1.1 or 5",
                              UNSUPPORTED_VERSION)
    flags = b.u8("connect flags")
    if flags & 0x01:   # v3 [MQTT-3.1.2-3], v5 [MQTT-3.1.2-3]: the reserved flag must be 0
        raise MalformedPacket("CONNECT reserved flag is set")
    will = bool(flags & 0x04)
    will_qos = (flags >> 3) & 0x03
    if will_qos == 3 or (not will and (will_qos or flags & 0x20)):
        # v3 [MQTT-3.1.2-11] [MQTT-3.1.2-13] [MQTT-3.1.2-14] [MQTT-3.1.2-15]
        raise MalformedPacket("CONNECT will flags are inconsistent")
    has_user, has_password = bool(flags & 0x80), bool(flags & 0x40)
    if level == V311 and has_password and not has_user:   # v3 [MQTT-3.1.2-22]
        raise MalformedPacket("CONNECT has a password without a user name")
    keepalive = b.u16("keep alive")
    properties = b.properties("CONNECT") if level == V5 else {}
    client_id = b.string("client identifier")
    will_message = None
    if will:
        if level == V5:
            b.properties("will")
        will_message = (b.string("will topic"), b.binary("will payload"), will_qos, bool(flags & 0x20))
    username = b.string("user name") if has_user else None
    password = b.binary("password") if has_password else None
    if b.left():
        raise MalformedPacket(f"CONNECT has {b.left()} bytes after its payload")
    if properties.get(RECEIVE_MAXIMUM, 1) == 0 or properties.get(MAXIMUM_PACKET_SIZE, 1) == 0:
        raise MalformedPacket("CONNECT Receive Maximum or Maximum Packet Size is 0", PROTOCOL_ERROR)
    return Connect(level, client_id, bool(flags & 0x02), keepalive, username, password, will,
                   properties, will_message)


def parse_publish(flags: int, body: bytes, protocol: int, start: int = 0,
                  end: int | None = None) -> Publish:
    """The PUBLISH whose body is ``body[start:end]`` (a whole read's buffer, parsed in place)."""
    qos = (flags >> 1) & 0x03
    if qos == 3:   # v3 [MQTT-3.3.1-4], v5 [MQTT-3.3.1-4]
        raise MalformedPacket("PUBLISH has QoS 3")
    dup = bool(flags & 0x08)
    if dup and qos == 0:   # v3 [MQTT-3.3.1-2], v5 [MQTT-3.3.1-2]
        raise MalformedPacket("PUBLISH at QoS 0 has the DUP flag set")
    # The fields read in place, without a _Body: this runs once per message a device sends.
    end = len(body) if end is None else end
    if start + 2 > end:
        raise MalformedPacket("packet ends inside topic name")
    pos = start + 2 + (body[start] << 8 | body[start + 1])
    if pos > end:
        raise MalformedPacket("packet ends inside topic name")
    topic = _check_utf8(body[start + 2:pos], "topic name")
    if "+" in topic or "#" in topic:   # v3 and v5 [MQTT-3.3.2-2]
        raise MalformedPacket(f"topic name {topic[:100]!r} contains a wildcard", TOPIC_NAME_INVALID)
    packet_id = 0
    if qos:
        if pos + 2 > end:
            raise MalformedPacket("packet ends inside packet identifier")
        packet_id = body[pos] << 8 | body[pos + 1]
        pos += 2
        if packet_id == 0:   # v3 [MQTT-2.3.1-1], v5 [MQTT-2.2.1-3]
            raise MalformedPacket("PUBLISH at QoS > 0 has packet identifier 0")
    properties = {}
    if protocol == V5:
        b = _Body(body, pos, end)
        properties = b.properties("PUBLISH")
        pos = b.pos
    if TOPIC_ALIAS in properties:
        # This server announces Topic Alias Maximum 0: an alias is a Protocol Error (v5 3.3.2.3.4).
        raise MalformedPacket("PUBLISH uses a Topic Alias; this server allows none", PROTOCOL_ERROR)
    if not topic:   # v3 [MQTT-4.7.3-1]; in v5 only with an alias, which is refused above
        raise MalformedPacket("PUBLISH has an empty topic name", TOPIC_NAME_INVALID)
    return Publish(topic, body[pos:end], qos, bool(flags & 0x01), dup, packet_id, properties)


def parse_packet_id(body: bytes, what: str, protocol: int) -> int:
    """Packet identifier of PUBREL (v5: reason code and properties may follow; they are read)."""
    b = _Body(body)
    packet_id = b.u16(f"{what} packet identifier")
    if protocol == V5 and b.left():
        b.u8(f"{what} reason code")
        if b.left():
            b.properties(what)
    if b.left():
        raise MalformedPacket(f"{what} has {b.left()} bytes too many")
    return packet_id


def parse_subscribe_ids(body: bytes, protocol: int, what: str) -> tuple[int, int]:
    """(packet id, number of topic filters) of SUBSCRIBE or UNSUBSCRIBE (refused, but answered)."""
    b = _Body(body)
    packet_id = b.u16(f"{what} packet identifier")
    if protocol == V5:
        b.properties(what)
    count = 0
    while b.left():
        b.string(f"{what} topic filter")
        if what == "SUBSCRIBE":
            b.u8("subscription options")
        count += 1
    if count == 0:   # v3 [MQTT-3.8.3-3] [MQTT-3.10.3-2]
        raise MalformedPacket(f"{what} has no topic filter", PROTOCOL_ERROR)
    return packet_id, count


def check_flags(kind: int, flags: int) -> None:
    """Reserved flag bits (2.1.3 / 2.2.2): invalid ones close the connection, v3 [MQTT-2.2.2-2]."""
    expected = 0x02 if kind in (PUBREL, SUBSCRIBE, UNSUBSCRIBE) else 0
    if kind != PUBLISH and flags != expected:
        raise MalformedPacket(f"packet type {kind} has flags 0x{flags:x}, expected 0x{expected:x}")


# -- encoding --------------------------------------------------------------------------------
def _varint(n: int) -> bytes:
    if n < 0x80:
        return _ONE_BYTE[n]
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


_ONE_BYTE = [bytes((n,)) for n in range(256)]


def _packet(kind: int, flags: int, body: bytes) -> bytes:
    return bytes((kind << 4 | flags,)) + _varint(len(body)) + body


def _str(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">H", len(raw)) + raw


def encode_properties(props: dict) -> bytes:
    out = bytearray()
    for ident, value in props.items():
        kind = PROPERTY_TYPES[ident]
        out += _varint(ident)
        if kind == _BYTE:
            out.append(value)
        elif kind == _U16:
            out += struct.pack(">H", value)
        elif kind == _U32:
            out += struct.pack(">I", value)
        elif kind == _VARINT:
            out += _varint(value)
        elif kind == _STR:
            out += _str(value)
        else:
            raise ValueError(f"property 0x{ident:02x} is not written by this server")
    return _varint(len(out)) + bytes(out)


def encode_connack(protocol: int, session_present: bool, code: int, props: dict | None = None) -> bytes:
    body = bytes((1 if session_present else 0, code))
    if protocol == V5:
        body += encode_properties(props or {})
    return _packet(CONNACK, 0, body)


def encode_ack(kind: int, packet_id: int, protocol: int, reason: int = SUCCESS) -> bytes:
    """PUBACK, PUBREC or PUBCOMP (v5 omits reason code 0 and properties, 3.4.2.1)."""
    if protocol == V5 and reason != SUCCESS:
        return struct.pack(">BBHB", kind << 4, 3, packet_id, reason)
    return struct.pack(">BBH", kind << 4, 2, packet_id)


def encode_publish(topic: str, payload: bytes, qos: int, retain: bool, packet_id: int,
                   protocol: int) -> bytes:
    """A PUBLISH as a client sends it (DUP clear, no properties); ``packet_id`` only at QoS > 0."""
    raw = topic.encode()
    length = 2 + len(raw) + (2 if qos else 0) + (protocol == V5) + len(payload)
    return b"".join((_ONE_BYTE[PUBLISH << 4 | qos << 1 | retain], _varint(length),
                     len(raw).to_bytes(2, "big"), raw, packet_id.to_bytes(2, "big") if qos else b"",
                     b"\x00" if protocol == V5 else b"", payload))   # v5: property length 0


def encode_suback(kind: int, packet_id: int, protocol: int, count: int, code: int) -> bytes:
    """SUBACK or UNSUBACK refusing each filter with ``code`` (v3 UNSUBACK has no codes)."""
    body = struct.pack(">H", packet_id)
    if protocol == V5:
        body += encode_properties({}) + bytes((code,)) * count
    elif kind == SUBACK:
        body += bytes((code,)) * count
    return _packet(kind, 0, body)


def encode_disconnect(reason: int, text: str = "") -> bytes:
    """A v5 DISCONNECT from the server (v3 servers only close the connection)."""
    props = {REASON_STRING: text[:200]} if text else {}
    return _packet(DISCONNECT, 0, bytes((reason,)) + encode_properties(props))


PINGRESP_PACKET = _packet(PINGRESP, 0, b"")
