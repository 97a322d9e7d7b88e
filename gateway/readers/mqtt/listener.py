"""The LAN endpoint: an MQTT 3.1.1/5 server for publishing devices, inside the MQTT reader.

Devices connect here instead of to mosquitto so that a QoS 1 PUBACK (QoS 2 PUBREC) leaves only
after the message's points are in the synced WAL: each PUBLISH goes into the reader's batches
(the same subscriptions, decoders and dead letters as messages from the broker), and the reader
calls :meth:`LanConnection.ack` once the batch's ``Store.write`` returned. Every message is also
passed on to the reader's broker (the local mosquitto) for subscribers; the reader subscribes
there with MQTT 5's No Local option, so it does not store its own forwarded copy again.

Only publishing is served: SUBSCRIBE is answered with a refusal per filter (subscribers use
mosquitto). Will messages are passed on to the broker when a connection ends without DISCONNECT.
Bad input closes the connection as the standard says (statements cited where handled), is
counted in :attr:`LanListener.counters`, and never touches another client's messages.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import ssl
import time
import uuid
from typing import TYPE_CHECKING

from gateway.readers.mqtt import packets as p
from gateway.readers.mqtt.config import ListenerOptions
from gateway.readers.mqtt.passwords import PasswordFile
from gateway.readers.mqtt.sessions import SessionJournal, SessionState

if TYPE_CHECKING:
    from gateway.readers.mqtt.reader import MqttReader

log = logging.getLogger("gateway.readers.mqtt")

#: Bytes of answers waiting for a client before its socket is no longer read (a slow reader).
WRITE_BUFFER_HIGH = 64 * 1024
#: Packets read from one connection before other work of the loop gets a turn.
READ_BURST = 256
#: Bytes asked of a connection per read: a publisher's whole burst is parsed in one pass.
READ_CHUNK = 64 * 1024
#: Kernel send buffer per device connection: acks are 4 bytes, and loopback or LAN autotuning
#: would otherwise let a client that never reads hold megabytes of them.
SOCKET_SEND_BUFFER = 64 * 1024
#: Names of the counters on the status page: why connections were refused or closed.
COUNTERS = ("connections", "refused_busy", "refused_rate_limited", "wrong_passwords",
            "malformed_packets", "oversized_packets", "keepalive_timeouts", "connect_timeouts",
            "slow_readers", "receive_maximum_exceeded", "invalid_topics", "subscribe_refused",
            "sessions_taken_over", "duplicates_qos2", "wills_sent")


class LanListener:
    """Accepts device connections; owned and started by :class:`MqttReader`."""

    def __init__(self, options: ListenerOptions, reader: "MqttReader", data_dir: str) -> None:
        self.options = options
        self.reader = reader
        self.name = reader.config.display_name
        self.passwords = PasswordFile(options.password_file) if options.password_file else None
        self.sessions = SessionJournal(f"{data_dir}/mqtt-lan/{_safe(self.name)}.sessions",
                                       options.max_sessions)
        self.connections: set[LanConnection] = set()
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.messages = 0
        self._failures: dict[str, collections.deque] = {}
        self._server: asyncio.base_events.Server | None = None
        self._readable = asyncio.Event()
        self._readable.set()
        self.write_buffer_high = WRITE_BUFFER_HIGH
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> None:
        self.sessions.open()
        context = None
        if self.options.use_tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.options.tls_cert_file, self.options.tls_key_file)
        self._server = await asyncio.start_server(
            self._serve, self.options.host, self.options.port, ssl=context,
            ssl_handshake_timeout=float(self.options.connect_timeout) if context else None,
            reuse_address=True, limit=256 * 1024)
        log.info("mqtt %s: devices publish to %s://%s (acknowledged after the WAL sync)", self.name,
                 "mqtts" if context else "mqtt", self.options.listen)

    def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.close()

    async def close(self) -> None:
        """Closes every connection (MQTT 5: DISCONNECT 0x8B, server shutting down)."""
        self.stop_accepting()
        for conn in list(self.connections):
            conn.close(0x8B, "server shutting down")
        tasks = list(self._tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)
        self.sessions.close()

    # Back-pressure from the reader: while its batches are full, no connection is read.
    def pause_reading(self) -> None:
        self._readable.clear()

    def resume_reading(self) -> None:
        self._readable.set()

    def count(self, name: str) -> None:
        self.counters[name] += 1

    def spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- authentication ----------------------------------------------------------------------
    def rate_limited(self, address: str) -> bool:
        """True while ``address`` had auth_failures_per_minute wrong passwords in the last minute."""
        failures = self._failures.get(address)
        if not failures:
            return False
        now = time.monotonic()
        while failures and now - failures[0] > 60:
            failures.popleft()
        return len(failures) >= self.options.auth_failures_per_minute

    def note_failure(self, address: str) -> None:
        if len(self._failures) > 10000:   # bounded memory under a spoofed-address flood
            self._failures.clear()
        self._failures.setdefault(address, collections.deque()).append(time.monotonic())

    # -- connections -------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        address = peer[0] if peer else "?"
        if len(self.connections) >= self.options.max_connections:
            self.count("refused_busy")   # before reading: a CONNECT flood costs one accept each
            writer.transport.abort()
            return
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_SEND_BUFFER)
        conn = LanConnection(self, reader, writer, address)
        self.connections.add(conn)
        self.count("connections")
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            await conn.run()
        except Exception:   # a bug in one connection must not reach the others
            log.exception("mqtt %s: connection from %s failed", self.name, address)
        finally:
            self._tasks.discard(task)
            self.connections.discard(conn)
            conn.finish()


class LanConnection:
    """One device connection; the reader calls :meth:`ack` when a message is durable."""

    def __init__(self, listener: LanListener, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, address: str) -> None:
        self.listener = listener
        self.options = listener.options
        self.stream = reader
        self.writer = writer
        self.address = address
        self.protocol = p.V311
        self.client_id = ""
        self.session: SessionState | None = None
        self.open = True
        self.in_flight = 0       # QoS 1/2 messages not yet acknowledged (v5 Receive Maximum)
        self.will: tuple[str, bytes, int, bool] | None = None
        self._acks = bytearray()
        self._acks_scheduled = False
        self._tokens = float(self.options.max_messages_per_second)
        self._refilled = time.monotonic()
        self._buffer = b""   # read, not yet parsed: the start of a packet
        self.idle_timeout = 0.0
        self._last_packet = 0.0   # loop time of the last packet received (or of a pause's end)
        self._held = False        # not reading by choice (back-pressure, rate): no keepalive then
        self._keepalive: asyncio.TimerHandle | None = None

    def describe(self) -> str:
        return f"{self.client_id!r} from {self.address}" if self.client_id else self.address

    # -- writing ---------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        if self.open and not self.writer.is_closing():
            self.writer.write(data)

    def close(self, reason: int | None = None, text: str = "") -> None:
        """Closes the connection; MQTT 5 clients first get DISCONNECT with ``reason``."""
        if not self.open:
            return
        if self._acks:   # acks of stored messages go out before the connection closes
            self._send_acks()
        if reason is not None and self.protocol == p.V5 and self.session is not None:
            self.send(p.encode_disconnect(reason, text))
        self.open = False
        self.writer.close()

    def finish(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None
        if self.open:
            self.open = False
            self.writer.transport.abort()
        if self.will is not None:
            self.listener.count("wills_sent")
            self.listener.reader.forward(*self.will)
            self.will = None
        if self.session is not None and self.session.connection is self:
            self.listener.sessions.end(self.session)

    def ack(self, packet_id: int, qos: int, generation: int) -> bool:
        """Called by the reader once the message's points are durable (QoS 2: its id too).
        A batch's acks leave in one write: a send per 4-byte ack would cost more than the rest."""
        if not self.open:
            return False
        if qos == 1:
            self.in_flight -= 1
        self._acks += p.encode_ack(p.PUBACK if qos == 1 else p.PUBREC, packet_id, self.protocol)
        if not self._acks_scheduled:
            self._acks_scheduled = True
            asyncio.get_running_loop().call_soon(self._send_acks)
        return True

    def _send_acks(self) -> None:
        self._acks_scheduled = False
        data, self._acks = bytes(self._acks), bytearray()
        self.send(data)

    # -- reading ---------------------------------------------------------------------------
    async def run(self) -> None:
        listener = self.listener
        try:
            if not await self._connect():
                return
            await self._serve_packets()
        except p.MalformedPacket as e:
            listener.count("oversized_packets" if e.reason == p.PACKET_TOO_LARGE else
                           "invalid_topics" if e.reason == p.TOPIC_NAME_INVALID else
                           "malformed_packets")
            log.warning("mqtt %s: closing %s: %s", listener.name, self.describe(), e)
            self.close(e.reason, str(e))
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, OSError):
            pass   # the client went away; its unacknowledged messages are its to resend

    async def _connect(self) -> bool:
        listener, options = self.listener, self.options
        try:
            async with asyncio.timeout(float(options.connect_timeout)):
                data, [(first, start, end)] = await self._read_packets(
                    int(options.max_packet_size), 1)
        except TimeoutError:
            listener.count("connect_timeouts")
            self.close()
            return False
        kind, flags, body = first >> 4, first & 0x0F, data[start:end]
        if kind != p.CONNECT:   # v3 [MQTT-3.1.0-1], v5 [MQTT-3.1.0-1]: CONNECT comes first
            raise p.MalformedPacket(f"first packet is type {kind}, not CONNECT", p.PROTOCOL_ERROR)
        p.check_flags(kind, flags)
        if len(body) >= 7 and body[6] == p.V5:
            self.protocol = p.V5   # answers to a broken v5 CONNECT are v5 CONNACKs
        try:
            connect = p.parse_connect(body)
        except p.MalformedPacket as e:
            if e.reason == p.UNSUPPORTED_VERSION:   # v3 [MQTT-3.1.2-2], v5 [MQTT-3.1.2-2]
                self.send(p.encode_connack(self.protocol, False, p.UNSUPPORTED_VERSION
                                           if self.protocol == p.V5 else p.V3_BAD_VERSION))
            elif self.protocol == p.V5:   # v5 [MQTT-3.1.4-1]: CONNACK with a reason, then close
                self.send(p.encode_connack(p.V5, False, e.reason))
            raise
        self.protocol = connect.protocol
        if connect.will:
            _check_will(connect)
        refusal = self._authenticate(connect)
        if refusal is not None:
            code_v5, code_v3 = refusal
            self.send(p.encode_connack(self.protocol, False, code_v5 if self.protocol == p.V5 else code_v3))
            self.close()
            return False
        props: dict = {}
        client_id = connect.client_id
        if not client_id:
            if self.protocol == p.V311 and not connect.clean_start:   # v3 [MQTT-3.1.3-8]
                self.send(p.encode_connack(p.V311, False, p.V3_ID_REJECTED))
                self.close()
                return False
            client_id = f"lan-{uuid.uuid4().hex[:16]}"   # v3 [MQTT-3.1.3-6], v5 3.2.2.3.7
            if self.protocol == p.V5:
                props[0x12] = client_id
        self.client_id = client_id
        cap = int(float(options.session_expiry))
        if self.protocol == p.V5:
            asked = connect.properties.get(p.SESSION_EXPIRY, 0)
            expiry = min(asked, cap)
            if expiry != asked:
                props[p.SESSION_EXPIRY] = expiry
        else:
            expiry = 0 if connect.clean_start else cap
        # One connection per client id: the new one takes the session over (v3/v5 [MQTT-3.1.4-2]).
        old = next((c for c in listener.connections if c is not self and c.client_id == client_id
                    and c.session is not None), None)
        if old is not None:
            listener.count("sessions_taken_over")
            old.close(p.SESSION_TAKEN_OVER, "another connection took the session over")
            old.finish()
        self.session, present = await listener.sessions.begin(client_id, connect.clean_start, expiry)
        self.session.connection = self
        keepalive = connect.keepalive
        max_keepalive = int(float(options.max_keepalive))
        if keepalive == 0 or keepalive > max_keepalive:
            keepalive = max_keepalive
            if self.protocol == p.V5:   # v5 3.2.2.3.14: the client uses the server's value
                props[p.SERVER_KEEP_ALIVE] = keepalive
        # No packet within 1.5 x Keep Alive closes it (_check_keepalive). A 3.1.1 client asking
        # for no keep alive is held to max_keepalive all the same (3.1.2.10: the server may
        # disconnect a client it determines to be inactive).
        self.idle_timeout = 1.5 * keepalive
        if self.protocol == p.V5:
            props.update({p.RECEIVE_MAXIMUM: options.receive_maximum,
                          p.MAXIMUM_PACKET_SIZE: int(options.max_packet_size),
                          p.WILDCARD_AVAILABLE: 0, p.SUB_IDS_AVAILABLE: 0, p.SHARED_AVAILABLE: 0})
        if connect.will:
            self.will = connect.will_message
        self.send(p.encode_connack(self.protocol, present, 0, props))
        log.info("mqtt %s: device %s connected (MQTT %s, session %s)", listener.name,
                 self.describe(), "5" if self.protocol == p.V5 else "3.1.1",
                 "resumed" if present else "new")
        return True

    def _authenticate(self, connect: p.Connect) -> tuple[int, int] | None:
        """None when the client may connect, else its refusal (v5 reason, v3 return code)."""
        listener = self.listener
        if p.AUTHENTICATION_METHOD in connect.properties:
            return 0x8C, p.V3_NOT_AUTHORIZED   # enhanced authentication is not offered
        if connect.username is None:
            if self.options.allow_anonymous:
                return None
            log.warning("mqtt %s: refused %s: no user name", listener.name, self.address)
            listener.count("wrong_passwords")
            return p.BAD_CREDENTIALS, p.V3_BAD_CREDENTIALS
        if listener.rate_limited(self.address):
            listener.count("refused_rate_limited")
            return p.CONNECTION_RATE_EXCEEDED, p.V3_NOT_AUTHORIZED
        if listener.passwords is None:
            return None if self.options.allow_anonymous else (p.NOT_AUTHORIZED, p.V3_NOT_AUTHORIZED)
        try:
            ok = listener.passwords.check(connect.username, connect.password or b"")
        except OSError as e:
            log.error("mqtt %s: cannot read password file %s: %s", listener.name,
                      self.options.password_file, e.strerror)
            return 0x88, p.V3_UNAVAILABLE
        if ok:
            return None
        listener.count("wrong_passwords")
        listener.note_failure(self.address)
        # The user name is logged, the password never.
        log.warning("mqtt %s: wrong password for user %r from %s", listener.name,
                    connect.username, self.address)
        return p.BAD_CREDENTIALS, p.V3_BAD_CREDENTIALS

    async def _read_packets(self, max_size: int, limit: int = 0) -> tuple[bytes, list]:
        """Reads until at least one whole packet is there: (the bytes, their complete packets as
        :func:`.packets.split_packets` gives them). A partial packet at the end is kept for the
        next call. ``asyncio.IncompleteReadError`` when the client closes the connection."""
        data = self._buffer
        while True:
            packets, used, missing = p.split_packets(data, max_size, limit)
            if packets:
                self._buffer = data[used:]
                return data, packets
            # A large packet's rest in one read; else whatever the client sent meanwhile.
            more = (await self.stream.readexactly(missing) if missing > READ_CHUNK
                    else await self.stream.read(READ_CHUNK))
            if not more:
                raise asyncio.IncompleteReadError(data, None)
            data += more

    def _check_keepalive(self) -> None:
        """v3 [MQTT-3.1.2-24], v5 [MQTT-3.1.2-22]: no packet within 1.5 x Keep Alive closes the
        connection. One timer per connection, moved on lazily, not a timeout per read."""
        self._keepalive = None
        if not self.open:
            return
        loop = asyncio.get_running_loop()
        idle = loop.time() - self._last_packet
        if idle < self.idle_timeout or self._held:
            self._keepalive = loop.call_later(max(self.idle_timeout - idle, 0.1),
                                              self._check_keepalive)
            return
        listener = self.listener
        listener.count("keepalive_timeouts")
        log.warning("mqtt %s: closing %s: nothing received for %.0f s (1.5 x keep alive)",
                    listener.name, self.describe(), self.idle_timeout)
        self.close(p.KEEP_ALIVE_TIMEOUT, "keep alive timeout")   # the read then sees the end

    async def _hold(self, waiting) -> None:
        """Waits for ``waiting`` without reading; the keepalive clock restarts after it."""
        self._held = True
        try:
            await waiting
        finally:
            self._held = False
            self._last_packet = asyncio.get_running_loop().time()

    async def _serve_packets(self) -> None:
        listener, options = self.listener, self.options
        max_size = int(options.max_packet_size)
        rate = options.max_messages_per_second
        loop = asyncio.get_running_loop()
        self._last_packet = loop.time()
        self._keepalive = loop.call_later(self.idle_timeout, self._check_keepalive)
        burst = 0
        while self.open:
            if not listener._readable.is_set():
                # The store is behind: TCP back-pressure.
                await self._hold(listener._readable.wait())
            transport = self.writer.transport
            if transport.get_write_buffer_size() > listener.write_buffer_high:
                try:   # a client that does not read its acks is not read either
                    await self._hold(asyncio.wait_for(self.writer.drain(), self.idle_timeout))
                except asyncio.TimeoutError:
                    listener.count("slow_readers")
                    log.warning("mqtt %s: closing %s: it has not read its acknowledgements "
                                "for %.0f s", listener.name, self.describe(), self.idle_timeout)
                    self.open = False
                    transport.abort()   # close() would wait for the unread bytes to drain
                    return
            if burst >= READ_BURST:   # a client with a full buffer lets the others have a turn
                burst = 0
                await asyncio.sleep(0)
            data, packets = await self._read_packets(max_size)
            if not self.open:
                return
            self._last_packet = loop.time()
            burst += len(packets)
            # The rate limit's bucket is refilled once per read, and again only when it runs dry.
            self._tokens = min(float(rate),
                               self._tokens + (time.monotonic() - self._refilled) * rate)
            self._refilled = time.monotonic()
            for first, start, end in packets:
                kind = first >> 4
                if kind == p.PUBLISH:
                    if self._tokens < 1:   # too fast: read it later rather than drop anything
                        await self._hold(asyncio.sleep((1 - self._tokens) / rate))
                        self._tokens = min(float(rate), self._tokens
                                           + (time.monotonic() - self._refilled) * rate)
                        self._refilled = time.monotonic()
                        if not self.open:
                            return
                    self._tokens -= 1
                    self._publish(p.parse_publish(first & 0x0F, data, self.protocol, start, end))
                elif not self._control(kind, first & 0x0F, data[start:end]):
                    return

    def _control(self, kind: int, flags: int, body: bytes) -> bool:
        """Answers a packet other than PUBLISH; False once the connection ends with it."""
        listener = self.listener
        p.check_flags(kind, flags)
        if kind == p.PUBREL:
            packet_id = p.parse_packet_id(body, "PUBREL", self.protocol)
            listener.spawn(self._release(packet_id))
        elif kind == p.PINGREQ:
            self.send(p.PINGRESP_PACKET)
        elif kind == p.DISCONNECT:
            reason = body[0] if body else 0
            if reason != 0x04:   # 0x04: disconnect with Will Message (v5 3.14.2.1)
                self.will = None   # v3 [MQTT-3.14.4-3], v5 [MQTT-3.1.2-10]
            self.close()
            return False
        elif kind in (p.SUBSCRIBE, p.UNSUBSCRIBE):
            packet_id, count = p.parse_subscribe_ids(body, self.protocol, "SUBSCRIBE"
                                                     if kind == p.SUBSCRIBE else "UNSUBSCRIBE")
            listener.count("subscribe_refused")
            log.info("mqtt %s: %s tried to subscribe; subscribers use the broker's port",
                     listener.name, self.describe())
            if kind == p.SUBSCRIBE:
                self.send(p.encode_suback(p.SUBACK, packet_id, self.protocol, count,
                                          p.NOT_AUTHORIZED if self.protocol == p.V5 else 0x80))
            else:
                self.send(p.encode_suback(p.UNSUBACK, packet_id, self.protocol, count,
                                          p.NO_SUBSCRIPTION_EXISTED))
        elif kind == p.CONNECT:   # v3 [MQTT-3.1.0-2], v5 [MQTT-3.1.0-2]: a second CONNECT
            raise p.MalformedPacket("second CONNECT on one connection", p.PROTOCOL_ERROR)
        elif kind in (p.PUBACK, p.PUBREC, p.PUBCOMP):
            raise p.MalformedPacket(f"packet type {kind} acknowledges a message this server "
                                    "never sent", p.PROTOCOL_ERROR)
        else:   # CONNACK, SUBACK, UNSUBACK, PINGRESP go to clients; AUTH is not offered
            raise p.MalformedPacket(f"packet type {kind} is not sent by clients here",
                                    p.PROTOCOL_ERROR)
        return True

    def _publish(self, msg: p.Publish) -> None:
        listener = self.listener
        reader = listener.reader
        listener.messages += 1
        if msg.qos == 0:
            reader.receive(msg.topic, msg.payload, None)
            reader.forward(msg.topic, msg.payload, 0, msg.retain)
            return
        if self.in_flight >= self.options.receive_maximum and self.protocol == p.V5:
            # v5 3.3.4: more unacknowledged QoS 1/2 PUBLISHes than Receive Maximum.
            listener.count("receive_maximum_exceeded")
            raise p.MalformedPacket(f"more than Receive Maximum ({self.options.receive_maximum}) "
                                    "messages unacknowledged", p.RECEIVE_MAXIMUM_EXCEEDED)
        if msg.qos == 1:
            self.in_flight += 1
            reader.receive(msg.topic, msg.payload, (self, 0, msg.packet_id, 1))
            reader.forward(msg.topic, msg.payload, 1, msg.retain)
            return
        session = self.session
        if msg.packet_id in session.received:
            # Already stored and PUBREC'd: answer again, store nothing (v3 [MQTT-4.3.3-2],
            # v5 [MQTT-4.3.3-10]); this is the resend after a lost PUBREC or a crash.
            listener.count("duplicates_qos2")
            self.send(p.encode_ack(p.PUBREC, msg.packet_id, self.protocol))
            return
        self.in_flight += 1
        if msg.packet_id in session.pending:
            # Still on its way to the store (the client reconnected): PUBREC once it is there.
            listener.count("duplicates_qos2")
            reader.acknowledge_later((self, 0, msg.packet_id, 2))
            return
        session.pending.add(msg.packet_id)
        reader.receive(msg.topic, msg.payload, (self, 0, msg.packet_id, 2), qos2_session=session)
        reader.forward(msg.topic, msg.payload, 1, msg.retain)

    async def _release(self, packet_id: int) -> None:
        session = self.session
        try:
            known = await self.listener.sessions.released(session, packet_id)
        except OSError as e:
            log.error("mqtt %s: cannot sync the session journal: %s", self.listener.name, e)
            self.close(p.UNSPECIFIED_ERROR, "session journal not writable")
            return
        self.in_flight = max(0, self.in_flight - 1)
        # v5 3.7.2.1: an unknown id gets PUBCOMP 0x92; v3 answers PUBCOMP all the same.
        self.send(p.encode_ack(p.PUBCOMP, packet_id, self.protocol,
                               p.SUCCESS if known else p.PACKET_ID_NOT_FOUND))


def _check_will(connect: p.Connect) -> None:
    topic = connect.will_message[0]
    if not topic or "+" in topic or "#" in topic:   # v3 [MQTT-3.1.3-10] via [MQTT-3.3.2-2]
        raise p.MalformedPacket(f"will topic {topic[:100]!r} is not a valid topic name",
                                p.TOPIC_NAME_INVALID)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "mqtt"

