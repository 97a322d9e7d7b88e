"""The store's control socket: ``gateway write`` / ``export`` / ``query`` while the daemon runs.

A data directory belongs to one process (its lock). When the daemon holds it, the commands
talk to the daemon over the Unix socket ``store/control.sock`` in the data directory (mode
0600: only the daemon's user, or root, may use it).

Protocol: the client sends one JSON line (the request), then, for ``write``, the line protocol
body and shuts down its sending side. The server answers one JSON line (``{"ok": true, ...}`` or
``{"ok": false, "error": "..."}``). For ``export`` the line protocol follows in chunks, each an
ASCII decimal length and a newline, then that many bytes; a zero length ends them and a last
JSON line says how the export ended (``{"ok": true, "series": ..}`` or ``{"ok": false,
"error": ..}``). An error after the first byte thus reaches the client, and a connection that
ends without that line is an error too: output cut short never passes for complete. ``query``
sends the Flux text as its body and gets the result, in the requested format, in the same
chunks; an answer ``{"ok": false, "flux": true, ...}`` is an error in the program. A query never
writes (``to()`` is refused), and it runs on a query thread (the event loop only serves its
reads), so a heavy query does not hold up ingest.

While a daemon starts it holds the store before its socket answers, and a command may hold the
store when the daemon starts: :func:`with_store` makes commands wait and retry briefly, and the
daemon waits for the lock (:data:`gateway.store.store.DAEMON_LOCK_WAIT_S`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from typing import Callable, Iterable, TypeVar

from gateway.bridge import LoopUnavailable
from gateway.errors import GatewayError, StoreError, StoreLocked
from gateway.query.errors import FluxError
from gateway.runtime import Component
from gateway.store.transfer import ExportReport, check_time, export_lines, import_lines

T = TypeVar("T")

log = logging.getLogger("gateway.store")

SOCKET_NAME = "control.sock"
#: Longest request line accepted (the body of a write is not part of it).
MAX_REQUEST = 64 * 1024
_READ = 1 << 20
#: How long a command waits for a store held by another process to become reachable (its
#: control socket answering, or its lock free).
CLIENT_WAIT_S = 15.0
_RETRY_S = 0.1
#: Longest wait of a query thread for one step on the event loop (a read, a chunk sent to a
#: client that reads slowly).
QUERY_STEP_S = 60.0


class ControlUnavailable(StoreError):
    """The control socket does not exist or does not answer (nothing was sent)."""


def socket_path(store_dir: str) -> str:
    return os.path.join(store_dir, SOCKET_NAME)


class ControlServer(Component):
    """The socket server (component name ``control``), started after the store it serves and
    stopped before it."""

    name = "control"

    def __init__(self, store) -> None:
        super().__init__()
        self.store = store
        self.path = socket_path(store.path)
        self._server: asyncio.AbstractServer | None = None

    async def start(self, context=None) -> None:
        await super().start(context)
        if len(os.fsencode(self.path)) >= 108:
            log.warning("control socket path %s is too long for a Unix socket; gateway write/"
                        "export cannot reach this daemon", self.path)
            return
        try:
            os.unlink(self.path)  # left by a process that died; we hold the lock now
        except FileNotFoundError:
            pass
        self._server = await asyncio.start_unix_server(self._serve, self.path, limit=MAX_REQUEST)
        os.chmod(self.path, 0o600)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        await super().stop()

    def health(self):
        h = super().health()
        h["running"] = self._server is not None
        return h

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                request = json.loads(await reader.readline())
                if not isinstance(request, dict):
                    raise ValueError("request must be a JSON object")
                op = request.get("op")
                if op == "write":
                    await self._write(request, reader, writer)
                elif op == "export":
                    await self._export(request, writer)
                elif op == "query":
                    await self._query(reader, writer, str(request.get("format", "table")))
                elif op == "replication_status":
                    from gateway.replication import registry

                    writer.write(json.dumps({"ok": True, "streams": registry.stats()}).encode() + b"\n")
                else:
                    raise ValueError(f"unknown operation {op!r}")
            except FluxError as e:
                writer.write(json.dumps({"ok": False, "flux": True, "error": str(e)}).encode() + b"\n")
            except (GatewayError, ValueError, OSError, LoopUnavailable) as e:
                writer.write(json.dumps({"ok": False, "error": str(e)}).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:
            log.exception("control socket request failed")
        finally:
            writer.close()

    async def _write(self, request: dict, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        async def body():
            while True:
                piece = await reader.read(_READ)
                if not piece:
                    return
                yield piece

        # Lines without a timestamp are timed by the request, as an HTTP write's: with the
        # clock rule, a held time until the clock is synchronised (docs/clock.md).
        wall_clock = self.store.wall_clock
        report = await import_lines(self.store, str(request.get("bucket", "raw")), body(),
                                    str(request.get("precision", "ns")),
                                    default_time_ns=wall_clock.now_ns() if wall_clock else None)
        writer.write(json.dumps({"ok": True, **report.as_dict()}).encode() + b"\n")

    async def _export(self, request: dict, writer: asyncio.StreamWriter) -> None:
        bucket = str(request.get("bucket", "raw"))
        self.store.bucket(bucket)
        start, stop = (None if request.get(k) is None
                       else check_time(request.get(k), f"{k}={request.get(k)!r}")
                       for k in ("start", "stop"))
        writer.write(json.dumps({"ok": True}).encode() + b"\n")
        report = ExportReport()
        try:
            async for text in export_lines(self.store, bucket, start, stop,
                                           request.get("measurement"), report):
                writer.write(b"%d\n" % len(text) + text)
                await writer.drain()
        except (GatewayError, ValueError, OSError) as e:
            log.error("export through the control socket failed: %s", e)
            end = {"ok": False, "error": str(e)}
        else:
            end = {"ok": True, **report.as_dict()}
        writer.write(b"0\n" + json.dumps(end).encode() + b"\n")

    async def _query(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     fmt: str) -> None:
        from gateway.bridge import LoopBridge
        from gateway.query import compile_query, on_query_thread, run_query_in_thread
        from gateway.query.lexer import MAX_SOURCE
        from gateway.query.output import render

        body = await reader.read(MAX_SOURCE * 4 + 1)   # UTF-8: at most 4 bytes per character
        bridge = LoopBridge(asyncio.get_running_loop(), QUERY_STEP_S)

        async def send(data: bytes) -> None:
            writer.write(data)
            await writer.drain()

        def answer() -> None:
            # On a query thread: compiling, running and rendering never hold the event loop;
            # each chunk is handed to the loop to send (and waits for the client to take it).
            query = compile_query(body.decode("utf-8", "replace"))
            results, _ = run_query_in_thread(query, self.store, bridge, origin="control")
            pieces = render(results, fmt)   # checks the format before the answer goes out
            bridge.run(send, json.dumps({"ok": True}).encode() + b"\n")
            for text in pieces:
                data = text.encode("utf-8", "surrogateescape")
                bridge.run(send, b"%d\n" % len(data) + data)
            bridge.run(send, b"0\n" + json.dumps({"ok": True}).encode() + b"\n")

        await on_query_thread(answer)


class ControlClient:
    """Blocking client used by the CLI commands."""

    def __init__(self, store_dir: str) -> None:
        self.path = socket_path(store_dir)

    def available(self) -> bool:
        return os.path.exists(self.path)

    def _connect(self, request: dict) -> socket.socket:
        """A connection with the request sent; ControlUnavailable when nothing answers."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.connect(self.path)
        except OSError as e:
            sock.close()
            raise ControlUnavailable(f"the store is in use by another process and its control "
                                     f"socket {self.path} does not answer: {e.strerror}") from None
        sock.sendall(json.dumps(request).encode() + b"\n")
        return sock

    @staticmethod
    def _answer(f) -> dict:
        line = f.readline(MAX_REQUEST)
        if not line:
            raise StoreError("the daemon closed the control connection without an answer")
        answer = json.loads(line)
        if not answer.get("ok") and answer.get("flux"):
            raise FluxError(answer.get("error", "the query failed"))
        if not answer.get("ok"):
            raise StoreError(f"the daemon refused: {answer.get('error', 'no reason given')}")
        return answer

    def write(self, bucket: str, precision: str, pieces: Iterable[bytes]) -> dict:
        sock = self._connect({"op": "write", "bucket": bucket, "precision": precision})
        with sock, sock.makefile("rb") as f:
            for piece in pieces:
                sock.sendall(piece)
            sock.shutdown(socket.SHUT_WR)
            return self._answer(f)

    def replication_status(self) -> dict:
        """The daemon's replication streams and their figures."""
        sock = self._connect({"op": "replication_status"})
        with sock, sock.makefile("rb") as f:
            line = f.readline()  # dead letters make it longer than a request may be
        if not line:
            raise StoreError("the daemon closed the control connection without an answer")
        answer = json.loads(line)
        if not answer.get("ok"):
            raise StoreError(f"the daemon refused: {answer.get('error', 'no reason given')}")
        return answer["streams"]

    def export(self, bucket: str, start, stop, measurement, out) -> ExportReport:
        """Writes the export to ``out``; raises StoreError when the daemon reports an error
        or the connection ends early (``out`` then holds the part that came)."""
        sock = self._connect({"op": "export", "bucket": bucket, "start": start, "stop": stop,
                              "measurement": measurement})
        with sock, sock.makefile("rb") as f:
            self._answer(f)
            return ExportReport.from_dict(self._chunks(f, out, "export"))

    def query(self, source: str, fmt: str, out) -> None:
        """Writes the query's result to ``out``; FluxError for an error in the program."""
        sock = self._connect({"op": "query", "format": fmt})
        with sock, sock.makefile("rb") as f:
            sock.sendall(source.encode("utf-8", "surrogateescape"))
            sock.shutdown(socket.SHUT_WR)
            self._answer(f)
            self._chunks(f, out, "query")

    def _chunks(self, f, out, what: str) -> dict:
        """Copies the chunks to ``out``; the closing answer. StoreError when they end early."""
        while True:
            head = f.readline(32)
            if not head.endswith(b"\n") or not head[:-1].isdigit():
                raise StoreError(f"the daemon ended the {what} early (connection closed "
                                 f"or garbled); the output is incomplete")
            size = int(head)
            if size == 0:
                return self._answer(f)
            data = f.read(size)
            if len(data) != size:
                raise StoreError(f"the daemon ended the {what} early (connection closed); "
                                 f"the output is incomplete")
            out.write(data)


def with_store(store_dir: str, local: Callable[[], T], remote: Callable[[ControlClient], T],
               wait: float = CLIENT_WAIT_S) -> T:
    """``local()`` (which opens the store in this process), or, while another process holds
    the store, ``remote(client)`` through that process's control socket. A daemon that is
    starting holds the store before its socket answers, and a command may hold it for a
    moment: both are waited for, retrying for up to ``wait`` seconds (logged once). Only
    attempts that sent nothing are retried."""
    deadline = time.monotonic() + wait
    told = False
    while True:
        try:
            return local()
        except StoreLocked as locked:
            try:
                return remote(ControlClient(store_dir))
            except ControlUnavailable:
                if time.monotonic() >= deadline:
                    raise StoreError(f"{locked}, and its control socket does not answer "
                                     f"(waited {wait:.0f} s)") from None
                if not told:
                    log.warning("%s and does not answer yet; waiting up to %.0f s", locked, wait)
                    told = True
        time.sleep(_RETRY_S)
