"""Passing LAN messages on to the broker, for its subscribers, at a cost per message far below
storing it.

The messages go out on the reader's own broker connection, not on one of their own: the reader
subscribes with MQTT 5's No Local, which mosquitto applies by client id, so only copies sent
under the reader's client id stay away from the reader (it would store them twice otherwise).

paho's ``publish`` costs about 40 µs of Python per message on a Pi-class core (a message object,
a condition variable and an info object each, and for each PUBACK a decode with properties and a
callback): more than the store write. So the PUBLISH packets are encoded here
(:func:`.packets.encode_publish`), the messages of one loop turn are handed to paho's send queue
as one buffer (paho still does the socket writes, partial ones included), and the broker's
PUBACKs for them are taken by :meth:`Forwarder.ack` before paho would decode them. Packet ids
come from paho's own counter, so they never collide with its SUBSCRIBEs.

What it promises (``docs/architecture.md``): at least once while the gateway runs. A QoS 1
message stays in :attr:`Forwarder.unacked` until its PUBACK and is sent again, DUP set, after a
reconnect (whether or not the broker kept the session). The broker being away never holds up
ingest: messages wait here, up to :data:`MAX_IN_FLIGHT`, and are dropped and counted beyond
(``forward_failures`` on the status page); a QoS 0 message already written to a connection that
breaks is lost with it, as QoS 0 allows.
"""

from __future__ import annotations

import asyncio
from typing import Callable

from gateway.readers.mqtt import packets as p

#: QoS 1 messages passed on and not yet acknowledged by the broker (sent or waiting for it).
#: Below the 65,535 packet ids: the broker acknowledges in order (v5 [MQTT-4.6.0-2]), so the
#: ids in use are one window that never wraps onto itself.
MAX_IN_FLIGHT = 60_000
#: A PUBACK reason code from here up is a refusal (v5 3.4.2.1: not authorized, quota exceeded...).
FIRST_ERROR_REASON = 0x80


class Forwarder:
    """The reader's outgoing PUBLISHes. ``send(buffer)`` queues bytes on the connection (loop
    thread); ``next_id()`` gives a packet id. :meth:`online` and :meth:`offline` follow the
    connection, :meth:`ack` takes a PUBACK's body."""

    def __init__(self, protocol: int, send: Callable[[bytes], None], next_id: Callable[[], int]) -> None:
        self.protocol = protocol
        self._send = send
        self._next_id = next_id
        self.connected = False
        self.unacked: dict[int, bytes] = {}   # packet id -> its PUBLISH, in the order taken
        self._never_sent: set[int] = set()    # ids in unacked taken while disconnected
        self._out: list[bytes] = []           # encoded this loop turn, not yet queued
        self._waiting: list[bytes] = []       # QoS 0 taken while disconnected
        self._flush_scheduled = False
        self.acked = 0
        self.failures = 0   # refused by the broker

    def add(self, topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        """Takes a message to pass on at QoS 0 or 1; False when it is dropped (counted by the
        caller): MAX_IN_FLIGHT messages already wait."""
        if len(self.unacked) + len(self._waiting) >= MAX_IN_FLIGHT:
            return False
        if qos == 0:
            packet = p.encode_publish(topic, payload, 0, retain, 0, self.protocol)
            if self.connected:
                self._queue(packet)
            else:
                self._waiting.append(packet)
            return True
        packet_id = self._next_id()
        while packet_id in self.unacked:   # only if PUBACKs came out of order: stay unique
            packet_id = self._next_id()
        packet = p.encode_publish(topic, payload, 1, retain, packet_id, self.protocol)
        self.unacked[packet_id] = packet
        if self.connected:
            self._queue(packet)
        else:
            self._never_sent.add(packet_id)
        return True

    def ack(self, body: bytes) -> bool:
        """A PUBACK's body from the broker; True if it acknowledges a message passed on here."""
        if len(body) < 2 or self.unacked.pop(body[0] << 8 | body[1], None) is None:
            return False   # paho's own (none today) or a stale one after a reconnect
        self.acked += 1
        if len(body) > 2 and body[2] >= FIRST_ERROR_REASON:
            self.failures += 1   # the broker would refuse a resend the same way
        return True

    def online(self) -> None:
        """The connection is up (CONNACK): every QoS 1 message not acknowledged goes (again),
        then the QoS 0 ones that waited."""
        self.connected = True
        self._out.clear()   # the QoS 1 ones among them are in unacked, in order
        for packet_id, packet in self.unacked.items():
            if packet_id not in self._never_sent:   # DUP: sent before, perhaps received [MQTT-3.3.1-1]
                packet = bytes((packet[0] | 0x08,)) + packet[1:]
            self._queue(packet)
        self._never_sent.clear()
        waiting, self._waiting = self._waiting, []
        for packet in waiting:
            self._queue(packet)

    def offline(self) -> None:
        """The connection is gone: what paho had queued is lost with it (QoS 1 stays in
        unacked); QoS 0 messages not yet handed to paho wait for the next connection."""
        self.connected = False
        self._keep_unsent_qos0()

    def _queue(self, packet: bytes) -> None:
        self._out.append(packet)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._out:
            return
        if not self.connected:
            self._keep_unsent_qos0()
            return
        out, self._out = self._out, []
        self._send(b"".join(out))

    def _keep_unsent_qos0(self) -> None:
        self._waiting += [packet for packet in self._out if not packet[0] & 0x06]
        self._out.clear()
