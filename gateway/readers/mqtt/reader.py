"""The MQTT reader: messages in, points durably stored, then acknowledged, in order.

Messages are decoded as they arrive (on the loop thread, inside paho's read) into an open
batch. A batch is written to the store when it holds ``max_batch_messages`` or ``batch_linger``
has passed, and up to ``max_writes_in_flight`` writes wait for the WAL sync at once, so one
sync interval carries many thousands of messages. A batch's messages are acknowledged (PUBACK)
only after its write returned (the points are synced) and after every earlier batch was
acknowledged: MQTT expects PUBACKs in the order the PUBLISHes arrived.

A message that cannot become points is acknowledged with its batch (so the broker does not
send it again forever), counted per reason and topic, and kept in a short dead-letter list for
the status page. It costs the good messages nothing.

With a ``[readers.mqtt.listener]`` table the reader also serves LAN devices itself
(:mod:`.listener`): their messages enter the same batches and are acknowledged the same way, by
the connection they came on, and are passed on to the broker for subscribers.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from typing import Any

from gateway.clock import HELD_BASE_NS, WallClock
from gateway.readers.mqtt.client import MqttConnection
from gateway.readers.mqtt.config import Config
from gateway.readers.mqtt.listener import LanListener
from gateway.readers.mqtt.payloads import (INTERNAL_ERROR, OVERSIZED, ROWS_TOPIC, TOPIC_MISMATCH,
                                           UNPARSEABLE, WRONG_TYPE, BadMessage, Decoder, PointSink,
                                           decoder_for)
from gateway.readers.mqtt.topics import filter_matches
from gateway.readers.store_writer import write_until_stored
from gateway.runtime import Component, Context

log = logging.getLogger("gateway.readers.mqtt")

#: Distinct topics counted per bad-message reason; further topics share one counter.
MAX_BAD_TOPICS = 1000
OTHER_TOPICS = "(other topics)"
#: Bytes of a bad payload kept in the dead-letter list.
DEAD_LETTER_PREVIEW = 200
#: Distinct topics whose subscription is remembered.
ROUTE_CACHE_SIZE = 4096
#: Where points the store refused (their series already has another type) are counted: the
#: store answers per batch, not per message.
TYPE_CONFLICT_TOPIC = "(series type conflict)"


class _Pending:
    """Messages decoded into one batch, waiting for their store write and their acks."""

    __slots__ = ("points", "acks", "messages", "done", "bad", "qos2")

    def __init__(self) -> None:
        self.points = PointSink()
        self.bad: list[tuple[int, str, str, str, bytes]] = []   # refused at once, see seal()
        # (connection, generation, mid, qos) in receipt order; the connection is the broker's
        # or a LAN device's, each with ack(mid, qos, generation) -> bool.
        self.acks: list[tuple[Any, int, int, int]] = []
        self.qos2: list = []   # (LAN session, packet id) to record before their PUBREC
        self.messages = 0
        self.done: asyncio.Future | None = None


class MqttReader(Component):
    """Reader component for one ``[[readers.mqtt]]`` table."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config
        self.name = f"reader:mqtt:{config.display_name}"
        self.connection = MqttConnection(config, self._message)
        self.listener: LanListener | None = None
        self._store = None
        self._clock = WallClock(require_sync=False)   # the context's, from start()
        self._routes: dict[str, Decoder | None] = {}
        self._decoders = [(s.topic.split("/"), decoder_for(s)) for s in config.subscriptions]
        self._open = _Pending()
        self._linger: asyncio.TimerHandle | None = None
        self._in_flight: collections.deque[_Pending] = collections.deque()
        self._pending_messages = 0
        self._pause_at = max(config.receive_maximum, 2 * config.max_batch_messages)
        self._max_payload = int(config.max_payload_size)
        self._max_batch = config.max_batch_messages
        self._linger_s = float(config.batch_linger)
        self._lock = threading.Lock()   # guards the bad-message views read by health()
        self.messages_received = 0
        self.messages_stored = 0
        self.points_stored = 0
        self.bad_messages = 0
        self.acks_skipped = 0
        self.store_write_errors = 0
        self.points_refused = 0
        self.points_too_old = 0   # older than the bucket's retention: the store refuses them
        self.lan_messages_not_stored = 0   # from the LAN on topics no subscription matches
        self.forwarded = 0
        self.forward_failures = 0
        self.last_message_at: int | None = None   # ns
        self.last_store_error = ""
        self._bad: dict[str, dict[str, int]] = {}
        self._dead_letters: collections.deque = collections.deque(maxlen=config.dead_letters)

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self, context: Context) -> None:
        self._store = context.store
        self._clock = context.clock
        self._store.bucket(self.config.bucket)  # UnknownBucket (naming it) before we subscribe
        await super().start(context)
        self.spawn(self.connection.run(), "connection")
        if self.config.listener is not None:
            self.listener = LanListener(self.config.listener, self, context.data_dir)
            await self.listener.start()

    async def stop(self) -> None:
        """Writes and acknowledges what is already received, then disconnects."""
        budget_end = time.monotonic() + 3.0
        if self.listener is not None:
            self.listener.stop_accepting()
        self._pause_reading()
        self._flush()
        while self._in_flight and time.monotonic() < budget_end:
            await asyncio.wait([self._in_flight[-1].done], timeout=budget_end - time.monotonic())
            self._flush()
        if self.listener is not None:
            await self.listener.close()
        await self.connection.close(timeout=max(0.1, budget_end - time.monotonic()))
        await super().stop()

    # -- receiving (loop thread, inside paho's loop_read) ------------------------------------
    def _message(self, message, generation: int) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:  # brokers should refuse such topics; count it if one does not
            topic = None
        ack = (self.connection, generation, message.mid, message.qos) if message.qos else None
        self._take(topic, message.payload, ack, lan=False,
                   raw_topic=bytes(message._topic) if topic is None else None)

    def receive(self, topic: str, payload: bytes, ack: tuple | None, qos2_session=None) -> None:
        """A message from a LAN device (topic already checked by the packet codec); ``ack`` is
        (connection, generation, packet id, qos) or None for QoS 0."""
        if qos2_session is not None:
            self._open.qos2.append((qos2_session, ack[2]))
        self._take(topic, payload, ack, lan=True)

    def acknowledge_later(self, ack: tuple) -> None:
        """Acknowledges with the open batch, after every earlier one (a QoS 2 resend whose first
        copy is still on its way to the store)."""
        self._open.acks.append(ack)
        self._queued(self._open)

    def forward(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        """Passes a LAN message on to the broker for subscribers (not back to this reader)."""
        if not self.config.listener.forward or topic.startswith("$"):
            return
        if self.connection.publish(topic, payload, qos, retain):
            self.forwarded += 1
        else:
            self.forward_failures += 1

    def _take(self, topic: str | None, payload: bytes, ack: tuple | None, lan: bool,
              raw_topic: bytes | None = None) -> None:
        arrival_ns = self._clock.now_ns()   # a held time before the clock is synchronised
        self.messages_received += 1
        self.last_message_at = time.time_ns()
        pending = self._open
        try:
            if topic is None:
                topic = raw_topic.decode("utf-8", "replace")
                raise BadMessage(UNPARSEABLE, "topic is not valid UTF-8")
            if len(payload) > self._max_payload:
                raise BadMessage(OVERSIZED, f"payload of {len(payload)} bytes is larger than "
                                            f"max_payload_size ({self.config.max_payload_size.text})")
            decoder = self._route(topic)
            if decoder is None:
                if lan:   # a LAN message only for subscribers: passed on, nothing to store
                    self.lan_messages_not_stored += 1
                else:
                    raise BadMessage(TOPIC_MISMATCH, "no subscription of this reader matches the topic")
            else:
                decoder.decode(topic, payload, arrival_ns, pending.points)
        except BadMessage as e:
            pending.bad.append((arrival_ns, topic, e.reason, e.detail, payload))
        except Exception as e:  # a bug must not stop the good messages behind this one
            log.exception("mqtt %s: decoding a message from %r failed", self.config.display_name, topic)
            pending.bad.append((arrival_ns, topic, INTERNAL_ERROR, f"{type(e).__name__}: {e}", payload))
        if ack is not None:
            pending.acks.append(ack)
        self._queued(pending)

    def _queued(self, pending: _Pending) -> None:
        pending.messages += 1
        self._pending_messages += 1
        if pending.messages >= self._max_batch:
            self._flush()
        elif pending.messages == 1:
            self._linger = asyncio.get_running_loop().call_later(self._linger_s, self._flush)
        if self._pending_messages >= self._pause_at:
            self._pause_reading()

    def _pause_reading(self) -> None:
        self.connection.pause_reading()
        if self.listener is not None:
            self.listener.pause_reading()

    def _resume_reading(self) -> None:
        self.connection.resume_reading()
        if self.listener is not None:
            self.listener.resume_reading()

    def _route(self, topic: str) -> Decoder | None:
        try:
            return self._routes[topic]
        except KeyError:
            pass
        levels = topic.split("/")
        decoder = next((d for f, d in self._decoders if filter_matches(f, levels)), None)
        if len(self._routes) >= ROUTE_CACHE_SIZE:
            self._routes.clear()
        self._routes[topic] = decoder
        return decoder

    def _count_bad(self, topic: str, reason: str, detail: str, payload: bytes,
                   arrival_ns: int | None = None) -> None:
        with self._lock:
            self.bad_messages += 1
            per_topic = self._bad.setdefault(reason, {})
            if topic not in per_topic and len(per_topic) >= MAX_BAD_TOPICS:
                topic_key = OTHER_TOPICS
            else:
                topic_key = topic
            per_topic[topic_key] = per_topic.get(topic_key, 0) + 1
            if self._dead_letters.maxlen:
                self._dead_letters.append({
                    "time": arrival_ns / 1e9 if 0 < arrival_ns < HELD_BASE_NS else time.time(), "topic": topic, "reason": reason, "error": detail,
                    "payload": payload[:DEAD_LETTER_PREVIEW].decode("utf-8", "replace"),
                    "payload_bytes": len(payload)})

    # -- writing and acknowledging ----------------------------------------------------------
    def _flush(self) -> None:
        """Starts the store write of the open batch, if a write slot is free."""
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        pending = self._open
        if pending.messages == 0 or len(self._in_flight) >= self.config.max_writes_in_flight:
            return  # a finishing write calls _flush again
        self._open = _Pending()
        # Bad messages are counted here, in arrival order, whether they were refused on
        # arrival or when their group was decoded.
        bad = pending.points.seal()
        if pending.bad:
            bad = sorted(pending.bad + bad, key=lambda b: b[0])
        for arrival_ns, topic, reason, detail, payload in bad:
            if reason == INTERNAL_ERROR and topic == ROWS_TOPIC:
                log.error("mqtt %s: a decoded row did not parse: %s", self.config.display_name, detail)
            self._count_bad(topic, reason, detail, payload, arrival_ns)
        previous = self._in_flight[-1].done if self._in_flight else None
        pending.done = asyncio.get_running_loop().create_future()
        self._in_flight.append(pending)
        self.spawn(self._write(pending, previous), "write")

    async def _write(self, pending: _Pending, previous: asyncio.Future | None) -> None:
        try:
            stored = await self._write_durably(pending.points.batch)
            if previous is not None:
                await asyncio.shield(previous)
            if pending.qos2:
                await self._record_qos2(pending.qos2)
            sent = 0
            for connection, generation, mid, qos in pending.acks:
                sent += connection.ack(mid, qos, generation)
            self.acks_skipped += len(pending.acks) - sent
            self.messages_stored += pending.messages
            self.points_stored += stored
            self._pending_messages -= pending.messages
        finally:
            if not pending.done.done():
                pending.done.set_result(None)
            if self._in_flight and self._in_flight[0] is pending:
                self._in_flight.popleft()
        if self._pending_messages < self._pause_at // 2:
            self._resume_reading()
        if self._open.messages and (self._linger is None
                                    or self._open.messages >= self.config.max_batch_messages):
            self._flush()

    async def _record_qos2(self, items: list) -> None:
        """QoS 2 ids of LAN sessions, synced before their PUBREC (see :mod:`.sessions`)."""
        try:
            await self.listener.sessions.received(items)
        except OSError as e:
            # Without the record a resend would be stored twice: no PUBREC, the client resends.
            log.error("mqtt %s: cannot sync the LAN session journal (%s); closing the QoS 2 "
                      "publishers concerned", self.config.display_name, e)
            for session, _ in items:
                if session.connection is not None:
                    session.connection.close(0x80, "session journal not writable")

    async def _write_durably(self, batch) -> int:
        """Store.write until it succeeds: nothing is acked before, so the source keeps the data
        (the policy: see :mod:`gateway.readers.store_writer`). Returns the points the store took."""
        if len(batch) == 0:
            return 0
        result = await write_until_stored(self._store, batch, self.config.bucket,
                                          f"mqtt {self.config.display_name}", self._store_failed)
        refused = getattr(result, "refused", 0)
        self.points_too_old += getattr(result, "too_old", 0)
        if refused:
            # Points whose series already holds another type: counted, not retried.
            self.points_refused += refused
            self._count_bad(TYPE_CONFLICT_TOPIC, WRONG_TYPE, result.problem or
                            f"{refused} point(s) refused by the store", b"")
        return getattr(result, "points", len(batch))

    def _store_failed(self, e: Exception) -> None:
        self.store_write_errors += 1
        self.last_store_error = f"{type(e).__name__}: {e}"

    # -- status page ------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        c = self.config
        conn = self.connection
        with self._lock:
            bad = {reason: dict(topics) for reason, topics in self._bad.items()}
            dead = list(self._dead_letters)
        return {
            **super().health(),
            "endpoint": c.endpoint,
            "client_id": c.client_id,
            "connected": conn.connected,
            "session_present": conn.session_present,
            "connects": conn.connects,
            "disconnects": conn.disconnects,
            "last_connected_at": conn.last_connected_at,
            "last_message_at": self.last_message_at / 1e9 if self.last_message_at else None,
            "last_error": conn.last_error,
            "subscriptions": [dict(s) for s in conn.subscriptions],
            "messages_received": self.messages_received,
            "messages_stored": self.messages_stored,
            "points_stored": self.points_stored,
            "messages_pending": self._pending_messages,
            "writes_in_flight": len(self._in_flight),
            "bad_messages": self.bad_messages,
            "bad_by_reason": {reason: sum(t.values()) for reason, t in bad.items()},
            "bad_by_topic": bad,
            "dead_letters": dead,
            "acks_skipped_after_reconnect": self.acks_skipped,
            "points_refused": self.points_refused,
            "points_too_old": self.points_too_old,
            "store_write_errors": self.store_write_errors,
            "last_store_error": self.last_store_error,
            **({"lan": self._lan_health()} if self.listener is not None else {}),
        }

    def _lan_health(self) -> dict[str, Any]:
        listener = self.listener
        forwarder = self.connection.forwarder
        return {
            "listen": listener.options.listen,
            "tls": listener.options.use_tls,
            "connected_devices": len(listener.connections),
            "sessions": len(listener.sessions.sessions),
            "messages": listener.messages,
            "messages_not_stored": self.lan_messages_not_stored,
            "forwarded": self.forwarded,
            "forward_failures": self.forward_failures + (forwarder.failures if forwarder else 0),
            **listener.counters,
        }
