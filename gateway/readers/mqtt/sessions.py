"""Sessions of the LAN endpoint's clients, and the QoS 2 packet ids they hold, kept durably.

What a session of a publishing client holds on the server side is small: that it exists (so
CONNACK says Session Present and the client resends its unacknowledged messages instead of
discarding them) and the packet ids of QoS 2 messages answered with PUBREC but not yet released
by PUBREL. "Durably" means the journal line is synced to the card *before* the packet it
justifies is sent:

- a session line before the CONNACK that reports it (a crash must not turn Session Present 1,
  already told to the client, into "no session", which would make the client drop its state);
- a received line after the points of the message are in the synced WAL and before PUBREC: the
  id then survives a crash, so a resent PUBLISH with DUP is answered with PUBREC and not stored
  a second time (v3 [MQTT-4.3.3-2], v5 [MQTT-4.3.3-10]);
- a released line before PUBCOMP: once the client has PUBCOMP it may reuse the id for a new
  message, which must not be taken for a duplicate.

Lines are appended and synced by group commit (one fsync serves every caller waiting at the
time). The format is in ``docs/format/mqtt-sessions.md``; the file is rewritten with the live
state only when it opens. Sessions of MQTT 5 clients that asked for Session Expiry Interval 0,
and of 3.1.1 clients with Clean Session 1, live in memory only: they end with the connection.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import zlib

log = logging.getLogger("gateway.readers.mqtt")

#: Line kinds: session (expiry s), session ended, QoS 2 id received (PUBREC), released (PUBREL).
_SESSION, _ENDED, _RECEIVED, _RELEASED = "S", "E", "R", "C"


class SessionState:
    """One client id's session: QoS 2 ids PUBREC'd (durably when ``durable``), ids in the
    store pipeline, and when its last connection ended (monotonic seconds; None while connected)."""

    __slots__ = ("client_id", "expiry", "durable", "received", "pending", "ended_at", "connection")

    def __init__(self, client_id: str, expiry: int, durable: bool) -> None:
        self.client_id = client_id
        self.expiry = expiry
        self.durable = durable
        self.received: set[int] = set()
        self.pending: set[int] = set()
        self.ended_at: float | None = None
        self.connection = None


def _line(kind: str, client_id: str, arg: int | None = None) -> bytes:
    text = f"{kind} {client_id.encode().hex()}" + ("" if arg is None else f" {arg}")
    return f"{zlib.crc32(text.encode()):08x} {text}\n".encode()


def _parse(raw: bytes) -> tuple[str, str, int | None] | None:
    """(kind, client id, arg) of a whole, intact line; None for a torn or damaged one."""
    try:
        text = raw.decode("ascii")
        crc, _, body = text.partition(" ")
        if int(crc, 16) != zlib.crc32(body.encode()):
            return None
        parts = body.split(" ")
        kind, client_id = parts[0], bytes.fromhex(parts[1]).decode()
        arg = int(parts[2]) if len(parts) > 2 else None
        if kind not in (_SESSION, _ENDED, _RECEIVED, _RELEASED) or (kind != _ENDED and arg is None):
            return None
        return kind, client_id, arg
    except (ValueError, IndexError, UnicodeDecodeError):
        return None


class SessionJournal:
    """The sessions of one LAN endpoint: in memory, and the durable ones in an append-only file."""

    def __init__(self, path: str, max_sessions: int, clock=time.monotonic) -> None:
        self.path = path
        self.max_sessions = max_sessions
        self._clock = clock
        self.sessions: dict[str, SessionState] = {}
        self._fd = -1
        self._written = 0     # lines appended
        self._synced = 0      # lines known to be on the card
        self._sync_task: asyncio.Task | None = None
        self.damaged_lines = 0
        self.syncs = 0

    # -- opening ---------------------------------------------------------------------------
    def open(self) -> None:
        """Reads the journal, keeps the live state, rewrites the file with it (synced)."""
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        now = self._clock()
        try:
            with open(self.path, "rb") as f:
                lines = f.read().split(b"\n")
        except FileNotFoundError:
            lines = []
        complete = lines[:-1]   # the part after the last newline is a torn append
        for raw in complete:
            parsed = _parse(raw)
            if parsed is None:
                self.damaged_lines += 1
                continue
            kind, client_id, arg = parsed
            state = self.sessions.get(client_id)
            if kind == _SESSION:
                if state is None:
                    state = self.sessions[client_id] = SessionState(client_id, arg, True)
                state.expiry = arg
                state.ended_at = now   # its expiry counts from this start: the conservative end
            elif kind == _ENDED:
                self.sessions.pop(client_id, None)
            elif state is not None and kind == _RECEIVED:
                state.received.add(arg)
            elif state is not None:
                state.received.discard(arg)
        if self.damaged_lines:
            log.error("mqtt sessions %s: %d damaged line(s) skipped", self.path, self.damaged_lines)
        tmp = self.path + ".new"
        with open(tmp, "wb") as f:
            for state in self.sessions.values():
                f.write(_line(_SESSION, state.client_id, state.expiry))
                for packet_id in sorted(state.received):
                    f.write(_line(_RECEIVED, state.client_id, packet_id))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(os.path.dirname(self.path), os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1

    # -- sessions --------------------------------------------------------------------------
    def expire(self) -> None:
        now = self._clock()
        for state in [s for s in self.sessions.values()
                      if s.ended_at is not None and now - s.ended_at >= s.expiry]:
            self.drop(state.client_id)

    def drop(self, client_id: str) -> None:
        state = self.sessions.pop(client_id, None)
        if state is not None and state.durable:
            self._append(_line(_ENDED, client_id))   # not synced: a session kept longer is harmless

    async def begin(self, client_id: str, clean_start: bool, expiry: int) -> tuple[SessionState, bool]:
        """The session for a new connection and whether one was present. Durable sessions
        (expiry > 0) are on the card when this returns."""
        self.expire()
        state = self.sessions.get(client_id)
        if state is not None and clean_start:
            self.drop(client_id)
            state = None
        present = state is not None
        if state is None:
            if len(self.sessions) >= self.max_sessions:
                idle = [s for s in self.sessions.values() if s.ended_at is not None]
                if idle:
                    oldest = min(idle, key=lambda s: s.ended_at)
                    log.warning("mqtt sessions: %d sessions kept; dropping the one idle longest (%r)",
                                len(self.sessions), oldest.client_id)
                    self.drop(oldest.client_id)
            state = self.sessions[client_id] = SessionState(client_id, expiry, expiry > 0)
        if expiry > 0 and (not state.durable or state.expiry != expiry or not present):
            state.durable = True
            state.expiry = expiry
            self._append(_line(_SESSION, client_id, expiry))
            await self.commit()
        elif expiry == 0 and state.durable:
            self._append(_line(_ENDED, client_id))   # the session now ends with this connection
            state.durable = False
        state.expiry = expiry
        state.ended_at = None
        return state, present

    def end(self, state: SessionState) -> None:
        """The session's connection closed: it stays until its expiry (0: it ends now)."""
        if self.sessions.get(state.client_id) is not state:
            return
        state.connection = None
        state.ended_at = self._clock()
        if state.expiry == 0:
            self.drop(state.client_id)

    # -- QoS 2 -----------------------------------------------------------------------------
    async def received(self, items: list[tuple[SessionState, int]]) -> None:
        """Marks QoS 2 ids as PUBREC'd; durable sessions' ids are on the card when this returns."""
        durable = False
        for state, packet_id in items:
            state.pending.discard(packet_id)
            state.received.add(packet_id)
            if state.durable and self.sessions.get(state.client_id) is state:
                self._append(_line(_RECEIVED, state.client_id, packet_id))
                durable = True
        if durable:
            await self.commit()

    async def released(self, state: SessionState, packet_id: int) -> bool:
        """PUBREL: forgets the id (durably before the caller sends PUBCOMP). False when unknown."""
        if packet_id not in state.received:
            return False
        state.received.discard(packet_id)
        if state.durable and self.sessions.get(state.client_id) is state:
            self._append(_line(_RELEASED, state.client_id, packet_id))
            await self.commit()
        return True

    # -- group commit ----------------------------------------------------------------------
    def _append(self, line: bytes) -> None:
        os.write(self._fd, line)
        self._written += 1

    async def commit(self) -> None:
        """Returns once every line appended before the call is synced."""
        target = self._written
        while self._synced < target:
            task = self._sync_task
            if task is None:
                task = self._sync_task = asyncio.get_running_loop().create_task(self._sync())
            await asyncio.shield(task)

    async def _sync(self) -> None:
        upto = self._written
        try:
            await asyncio.to_thread(os.fsync, self._fd)
            self.syncs += 1
            self._synced = max(self._synced, upto)
        finally:
            self._sync_task = None
