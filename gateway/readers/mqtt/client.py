"""A paho-mqtt 2.x client driven by the asyncio loop, with a persistent session and reconnects.

paho does the protocol; the loop does the waiting. paho tells us when its socket opens, closes,
and has bytes to write (``on_socket_*`` callbacks); we register the socket with
``loop.add_reader``/``add_writer`` and call ``loop_read``/``loop_write`` when it is ready, plus
``loop_misc`` once a second for keepalive. Nothing polls.

The blocking part of paho, ``connect()`` (DNS, TCP, TLS handshake), runs on a worker thread; the
socket is handed to the loop once it returns. Every other paho call happens on the loop thread.

The session survives restarts of either side: a fixed client id, MQTT v5 ``clean_start=False``
passed on every connect with a session expiry interval (paho's default, "clean on the first
connect of this client object", would wipe the session at every gateway start), or v3.1.1
``clean_session=False``. Acknowledgements are manual (``manual_ack=True``): the reader acks a
message once its points are durable.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
import time
from typing import Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.subscribeoptions import SubscribeOptions

from gateway.backoff import backoff_delay
from gateway.readers.mqtt import packets
from gateway.readers.mqtt.config import SESSION_EXPIRY_NEVER, Config
from gateway.readers.mqtt.forwarding import Forwarder

log = logging.getLogger("gateway.readers.mqtt")

#: Packets read per readiness callback before other loop work gets a turn.
READ_BURST = 256
#: Bytes asked of the socket per recv(): many packets per system call.
RECV_CHUNK = 64 * 1024
#: How often paho's keepalive bookkeeping runs.
MISC_INTERVAL_S = 1.0


class _Client(paho.Client):
    """paho's client, reading the socket in large chunks, and with the PUBACKs of messages the
    forwarder sent taken before paho decodes them (see :mod:`.forwarding`)."""

    forwarded_ack: Callable[[bytes], bool] | None = None
    # paho asks for a packet's bytes piece by piece (type, each length digit, body): a recv()
    # system call each, three per message. One large read serves them from here instead.
    _chunk = b""
    _chunk_pos = 0
    _chunk_sock = None

    def _sock_recv(self, bufsize: int) -> bytes:
        chunk, pos = self._chunk, self._chunk_pos
        if pos >= len(chunk) or self._chunk_sock is not self._sock:   # used up, or a new socket
            chunk = super()._sock_recv(RECV_CHUNK)   # BlockingIOError when there is nothing
            self._chunk, self._chunk_pos, self._chunk_sock = chunk, 0, self._sock
            pos = 0
        end = min(pos + bufsize, len(chunk))
        self._chunk_pos = end
        return chunk[pos:end]

    def buffered(self) -> bool:
        """True while bytes read from the socket wait here (the socket may not be readable)."""
        return self._chunk_pos < len(self._chunk) and self._chunk_sock is self._sock

    def _packet_read(self) -> MQTTErrorCode:
        # The broker's PUBACKs of passed-on messages come back to back, one per message: those
        # already read ahead (4 bytes each: v5 success, no properties) are taken here in one
        # go. Anything else, and a PUBACK split across reads, goes through paho.
        if self.forwarded_ack is not None and self._in_packet["command"] == 0 and self.buffered():
            chunk, pos = self._chunk, self._chunk_pos
            start, end = pos, len(chunk) - 3
            while (pos < end and chunk[pos] == 0x40 and chunk[pos + 1] == 2
                   and self.forwarded_ack(chunk[pos + 2:pos + 4])):
                pos += 4
            if pos > start:
                self._chunk_pos = pos
                with self._msgtime_mutex:   # paho's keepalive: the broker was heard from
                    self._last_bytes_received = paho.time_func()
                return MQTTErrorCode.MQTT_ERR_SUCCESS
        return super()._packet_read()

    def _handle_pubackcomp(self, cmd):
        if cmd == "PUBACK" and self.forwarded_ack is not None \
                and self.forwarded_ack(self._in_packet["packet"]):
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        return super()._handle_pubackcomp(cmd)


class MqttConnection:
    """One broker connection. ``run()`` connects and keeps reconnecting until cancelled.

    ``on_message(message, generation)`` is called on the loop thread for every PUBLISH.
    ``generation`` changes with each connection: a packet id only means something within the
    connection that delivered it, so acks of an older generation must not be sent.
    """

    def __init__(self, config: Config, on_message: Callable[[paho.MQTTMessage, int], None],
                 on_connection_change: Callable[[bool], None] | None = None) -> None:
        self.config = config
        self._on_message = on_message
        self._on_connection_change = on_connection_change
        self.generation = 0
        self.connected = False
        self.session_present: bool | None = None
        self.connects = 0
        self.disconnects = 0
        self.last_error = ""
        self.last_connected_at: float | None = None
        # QoS 2 is subscribed as QoS 1: paho keeps QoS 2 handshake state in memory only, so a
        # crash after PUBREC would lose the message, while QoS 1 redelivers it and the store
        # collapses the duplicate (same series and timestamp): each point is stored once.
        self.subscriptions: list[dict] = [
            {"topic": s.topic, "qos": min(s.qos, 1), "granted": None} for s in config.subscriptions]
        for s in config.subscriptions:
            if s.qos == 2:
                log.info("mqtt %s: %r asks for QoS 2; subscribing at QoS 1, which survives a "
                         "crash (duplicates collapse in the store)", config.display_name, s.topic)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread_id: int | None = None
        self._sock = None
        self._fd = -1
        self._misc_handle: asyncio.TimerHandle | None = None
        self._paused = False
        self._received = 0
        self._state_change: asyncio.Event | None = None
        self._connack: asyncio.Future | None = None
        self._closing = False
        self._acks = bytearray()   # PUBACKs of this loop turn (see ack)
        self._acks_scheduled = False
        self._client = self._make_client()
        self.forwarder: Forwarder | None = None
        if config.listener is not None and config.listener.forward:
            # Forwarding needs MQTT 5 (No Local; config.py refuses it otherwise).
            self.forwarder = Forwarder(packets.V5, self._send_raw, self._client._mid_generate)
            self._client.forwarded_ack = self.forwarder.ack

    # -- paho client ------------------------------------------------------------------------
    def _make_client(self) -> paho.Client:
        c = self.config
        v5 = c.protocol == "5"
        client = _Client(
            CallbackAPIVersion.VERSION2, client_id=c.client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if v5 else False, manual_ack=True)
        client.connect_timeout = float(c.connect_timeout)
        if c.use_tls:
            t = c.tls
            client.tls_set(ca_certs=(t.ca_file or None) if t else None,
                           certfile=(t.cert_file or None) if t else None,
                           keyfile=(t.key_file or None) if t else None,
                           cert_reqs=ssl.CERT_NONE if t and t.insecure_skip_verify else ssl.CERT_REQUIRED)
            if t and t.insecure_skip_verify:
                client.tls_insecure_set(True)
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        client.on_subscribe = self._handle_subscribe
        client.on_socket_open = self._socket_open
        client.on_socket_close = self._socket_close
        client.on_socket_register_write = self._socket_want_write
        client.on_socket_unregister_write = self._socket_done_writing
        return client

    def _connect_blocking(self) -> None:
        """Runs on a worker thread: paho's connect (TCP, TLS) and the CONNECT packet."""
        c = self.config
        if c.username:
            # Read at each connect: a password file may be fixed or rotated while we retry.
            try:
                password = c.password.reveal() if c.password is not None else None
            except ValueError as e:
                raise ValueError(f"password: {e}") from None
            self._client.username_pw_set(c.username, password)
        if c.protocol == "5":
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = min(int(c.session_expiry), SESSION_EXPIRY_NEVER)
            props.ReceiveMaximum = c.receive_maximum
            self._client.connect(c.host, c.port, keepalive=int(c.keepalive), clean_start=False,
                                 properties=props)
        else:
            self._client.connect(c.host, c.port, keepalive=int(c.keepalive))

    # -- lifecycle --------------------------------------------------------------------------
    async def run(self) -> None:
        """Connects, subscribes, and reconnects with capped jittered backoff; until cancelled."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread_id = threading.get_ident()
        self._state_change = asyncio.Event()
        c = self.config
        attempt = 0
        while True:
            ok = await self._connect_once()
            if ok:
                attempt = 0
                await self._wait_disconnected()
            if self._closing:
                return
            delay = backoff_delay(attempt, float(c.reconnect_min), float(c.reconnect_max))
            attempt += 1
            log.info("mqtt %s: reconnecting to %s in %.1fs", c.display_name, c.endpoint, delay)
            await asyncio.sleep(delay)

    async def _connect_once(self) -> bool:
        c = self.config
        self._connack = self._loop.create_future()
        try:
            await asyncio.to_thread(self._connect_blocking)
        except (OSError, ssl.SSLError, ValueError) as e:
            self._note_error(f"cannot connect to {c.endpoint}: {_describe(e)}")
            self._drop_socket()
            return False
        self._adopt_socket()
        try:
            reason = await asyncio.wait_for(asyncio.shield(self._connack), float(c.connect_timeout))
        except asyncio.TimeoutError:
            self._note_error(f"no CONNACK from {c.endpoint} within {c.connect_timeout.text}")
            self._client.disconnect()
            self._drop_socket()
            return False
        if reason is not None:
            self._note_error(f"{c.endpoint} refused the connection: {reason}")
            self._drop_socket()
            return False
        return True

    async def _wait_disconnected(self) -> None:
        while self.connected:
            self._state_change.clear()
            await self._state_change.wait()

    async def close(self, timeout: float = 1.0) -> None:
        """Sends DISCONNECT (the session stays on the broker) and closes the socket."""
        self._closing = True
        if self._sock is not None and self.connected:
            self._send_acks()   # acks of stored messages leave before DISCONNECT
            # Session Expiry is left as set at connect: the broker keeps the session for us.
            self._client.disconnect()
            deadline = time.monotonic() + timeout
            while self._sock is not None and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        self._drop_socket()

    # -- acks and flow control ---------------------------------------------------------------
    def ack(self, mid: int, qos: int, generation: int) -> bool:
        """Acknowledges a QoS 1/2 message if its connection is still the current one. A batch's
        PUBACKs go to paho's send queue as one entry (one send() instead of one per ack)."""
        if generation != self.generation or not self.connected:
            return False
        if qos != 1:
            self._client.ack(mid, qos)
            return True
        self._acks += packets.encode_ack(packets.PUBACK, mid, packets.V311)   # the same in v5
        if not self._acks_scheduled:
            self._acks_scheduled = True
            self._loop.call_soon(self._send_acks)
        return True

    def _send_acks(self) -> None:
        self._acks_scheduled = False
        if self._acks and self.connected:
            self._client._packet_queue(paho.PUBACK, bytes(self._acks), 0, 1)
        self._acks.clear()

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        """Passes a message on through this connection (QoS 1 waits here while disconnected);
        False if it is dropped. Only with a forwarding listener."""
        return self.forwarder.add(topic, payload, min(qos, 1), retain)

    def _send_raw(self, data: bytes) -> None:
        # paho's send queue, as one packet entry: it writes it (partly, on EAGAIN) in order
        # with its own packets. QoS 1 keeps paho from treating it as a QoS 0 message it sent.
        self._client._packet_queue(paho.PUBLISH, data, 0, 1)

    def pause_reading(self) -> None:
        """Stops reading the socket (TCP back-pressure) until :meth:`resume_reading`."""
        if not self._paused:
            self._paused = True
            if self._sock is not None:
                self._loop.remove_reader(self._fd)

    def resume_reading(self) -> None:
        if self._paused:
            self._paused = False
            if self._sock is not None:
                self._loop.add_reader(self._fd, self._readable)
                self._loop.call_soon(self._readable)

    # -- socket plumbing (loop thread) -------------------------------------------------------
    def _adopt_socket(self) -> None:
        """After connect() returned on the worker thread: hand paho's socket to the loop."""
        sock = self._client.socket()
        if sock is None:
            return
        self._sock = sock
        # Registered by number: paho may close the socket object before we hear of it.
        self._fd = sock.fileno()
        if not self._paused:
            self._loop.add_reader(self._fd, self._readable)
        if self._client.want_write():
            self._loop.add_writer(self._fd, self._writable)
        self._schedule_misc()

    def _drop_socket(self) -> None:
        if self._sock is not None:
            self._loop.remove_reader(self._fd)
            self._loop.remove_writer(self._fd)
            self._sock = None
        if self._misc_handle is not None:
            self._misc_handle.cancel()
            self._misc_handle = None

    def _socket_open(self, client, userdata, sock) -> None:
        pass  # called on the connect thread; _adopt_socket registers it once connect() returns

    def _socket_close(self, client, userdata, sock) -> None:
        if sock is self._sock and self._loop is not None:
            if threading.get_ident() == self._loop_thread_id:
                self._drop_socket()
            else:
                self._loop.call_soon_threadsafe(self._drop_socket)

    def _socket_want_write(self, client, userdata, sock) -> None:
        if sock is self._sock and self._loop is not None:
            self._loop.add_writer(self._fd, self._writable)

    def _socket_done_writing(self, client, userdata, sock) -> None:
        if sock is self._sock and self._loop is not None:
            self._loop.remove_writer(self._fd)

    def _readable(self) -> None:
        client = self._client
        forwarder = self.forwarder
        for _ in range(READ_BURST):
            before = self._received + (forwarder.acked if forwarder else 0)
            rc = client.loop_read()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or self._paused:
                return
            if (not client.buffered()
                    and self._received + (forwarder.acked if forwarder else 0) == before):
                return
        if client.buffered():   # packets read ahead wait: the socket may not wake us for them
            self._loop.call_soon(self._readable)

    def _writable(self) -> None:
        # paho sends each queued packet with its own send(); corked, the kernel sends them as
        # full segments when uncorked, so a burst of acks or passed-on messages wakes the
        # broker once instead of once per packet.
        cork = self._sock is not None and self._sock.family in (socket.AF_INET, socket.AF_INET6)
        if cork:
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        try:
            self._client.loop_write()
        finally:
            if cork and self._sock is not None:
                self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)

    def _schedule_misc(self) -> None:
        self._misc_handle = self._loop.call_later(MISC_INTERVAL_S, self._misc)

    def _misc(self) -> None:
        self._misc_handle = None
        if self._sock is None:
            return
        self._client.loop_misc()
        if self._sock is not None:
            self._schedule_misc()

    # -- paho callbacks (loop thread, from loop_read/loop_write/loop_misc) --------------------
    def _handle_connect(self, client, userdata, flags, reason_code, properties) -> None:
        c = self.config
        if reason_code.is_failure:
            if self._connack is not None and not self._connack.done():
                self._connack.set_result(str(reason_code))
            return
        self.generation += 1
        self.connected = True
        self.connects += 1
        self.last_connected_at = time.time()
        self.session_present = bool(flags.session_present)
        log.info("mqtt %s: connected to %s as %r (session %s)", c.display_name, c.endpoint,
                 c.client_id, "resumed" if flags.session_present else "new")
        if not flags.session_present and self.connects > 1:
            log.warning("mqtt %s: %s kept no session for %r; messages published while the gateway "
                        "was away may be lost (session expired or the broker lost its state)",
                        c.display_name, c.endpoint, c.client_id)
        self._subscribe(flags.session_present)
        if self.forwarder is not None:
            self.forwarder.online()
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(None)
        self._changed(True)

    def _subscribe(self, session_present: bool) -> None:
        c = self.config
        if c.protocol == "5":
            # Subscribing again on a resumed session is harmless and picks up new filters;
            # retained messages are sent only for subscriptions the session did not have yet.
            # No Local: messages this client passes on from the LAN endpoint are not sent back
            # to it (v5 3.8.3.1; mosquitto matches them by client id, so across reconnects too).
            no_local = c.listener is not None and c.listener.forward
            topics = [(e["topic"], SubscribeOptions(qos=e["qos"], noLocal=no_local,
                                                    retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB))
                      for e in self.subscriptions]
        else:
            topics = [(e["topic"], e["qos"]) for e in self.subscriptions]
        rc, mid = self._client.subscribe(topics)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._note_error(f"subscribe failed: {paho.error_string(rc)}")

    def _handle_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        c = self.config
        for entry, rc in zip(self.subscriptions, reason_codes):
            if rc.is_failure:
                entry["granted"] = None
                self._note_error(f"{c.endpoint} refused subscription {entry['topic']!r}: {rc}")
            else:
                entry["granted"] = rc.value
                if rc.value < entry["qos"]:
                    log.warning("mqtt %s: %s granted QoS %d for %r (asked for %d)", c.display_name,
                                c.endpoint, rc.value, entry["topic"], entry["qos"])

    def _handle_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was_connected = self.connected
        self.connected = False
        self.generation += 1
        self._acks.clear()   # packet ids of a connection that is gone
        if self.forwarder is not None:
            self.forwarder.offline()
        if was_connected:
            self.disconnects += 1
        if was_connected and not self._closing:
            self._note_error(f"disconnected from {self.config.endpoint}: {reason_code}")
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(f"connection closed ({reason_code})")
        self._changed(False)

    def _handle_message(self, client, userdata, message) -> None:
        self._received += 1
        self._on_message(message, self.generation)

    # -- helpers -----------------------------------------------------------------------------
    def _changed(self, connected: bool) -> None:
        if self._state_change is not None:
            self._state_change.set()
        if self._on_connection_change is not None:
            self._on_connection_change(connected)

    def _note_error(self, message: str) -> None:
        self.last_error = message
        log.warning("mqtt %s: %s", self.config.display_name, message)


def _describe(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__
