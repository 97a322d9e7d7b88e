"""The web server component: the Flask app served by waitress inside the gateway process.

waitress reads whole requests in its own I/O thread before a worker thread sees them, so a slow
client (slowloris) holds a socket, not a worker, and is dropped after ``http.timeout`` idle;
the event loop never waits for a client. Workers reach the store through :class:`LoopBridge`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading

from waitress import create_server
from waitress.channel import HTTPChannel
from waitress.task import ErrorTask, WSGITask

from gateway.runtime import Component
from gateway.web.errors import CODES

log = logging.getLogger("gateway.web")

#: Seconds ``stop()`` waits for requests in progress before it gives up on them.
STOP_WAIT_S = 2.0
#: Seconds between attempts to listen when the address is taken.
LISTEN_RETRY_S = 10.0


class WebServer(Component):
    name = "web"

    def __init__(self, config, data_dir: str) -> None:
        super().__init__()
        self.config = config
        self.data_dir = data_dir
        self.server = None
        self.state = None
        self._thread: threading.Thread | None = None
        self._app = None
        self.address: tuple[str, int] | None = None
        #: Why the server is not listening, or None.
        self.error: str | None = None

    async def start(self, context) -> None:
        from gateway.web.app import WebState, create_app
        from gateway.bridge import LoopBridge
        from gateway.web.tokens import TokenStore

        http = self.config.http
        self.state = WebState(self.config, context,
                              LoopBridge(asyncio.get_running_loop(), float(http.timeout)),
                              TokenStore(self.data_dir))
        self._app = create_app(self.state)
        try:
            self._listen()
        except OSError as e:
            # The sensors matter more than the page: the gateway runs on and tries again.
            self.error = f"cannot listen on http.listen = {http.listen!r}: {e.strerror or e}"
            log.error("%s; trying again every %.0f s", self.error, LISTEN_RETRY_S)
            self.spawn(self._listen_later(), "listen")
        await super().start(context)

    def _listen(self) -> None:
        http = self.config.http
        host, _, port = http.listen.rpartition(":")
        server = create_server(
            self._app, host=host.strip("[]"), port=int(port), threads=http.threads,
            channel_timeout=int(max(1, float(http.timeout))), cleanup_interval=5,
            max_request_body_size=int(http.max_body) + 1, connection_limit=64,
            asyncore_use_poll=True, ident="edge-gateway", expose_tracebacks=False)
        server.channel_class = _KeepAliveChannel
        server.gateway_counters = self.state.counters
        _count_slow_clients(server, self.state.counters)
        self.address = (str(server.effective_host), int(server.effective_port))
        self._thread = threading.Thread(target=server.run, name="gateway[web].waitress", daemon=True)
        self._thread.start()
        self.server = server
        self.error = None
        log.info("status page and HTTP API on http://%s:%d/", *self.address)

    async def _listen_later(self) -> None:
        while self.server is None:
            await asyncio.sleep(LISTEN_RETRY_S)
            try:
                self._listen()
            except OSError:
                continue

    async def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            # Closing happens in waitress's own I/O thread; the joins run off the loop, which
            # keeps answering the bridge calls of requests still in progress.
            server.trigger.pull_trigger(lambda: _close_all(server))
            await asyncio.to_thread(self._thread.join, STOP_WAIT_S)
            await asyncio.to_thread(server.task_dispatcher.shutdown, True, STOP_WAIT_S)
        await super().stop()

    def health(self):
        out = super().health()
        out["listen"] = f"{self.address[0]}:{self.address[1]}" if self.address else None
        out["healthy"] = self.error is None
        if self.error:
            out["error"] = self.error
        if self.state is not None:
            snap = self.state.counters.snapshot()
            out.update({k: snap[k] for k in ("points_written", "bad_lines", "errors")})
        return out


class _BodilessKeepAliveTask(WSGITask):
    """waitress 3.0 closes the connection after every 204 (it reads the absent Content-Length
    as an unknown length, although a 204 has no body by definition); an InfluxDB writer that
    waits for each 204 would reconnect for every write."""

    def set_close_on_finish(self) -> None:
        connection = self.request.headers.get("CONNECTION", "").lower()
        client_closes = connection == "close" or (self.version == "1.0" and connection != "keep-alive")
        if self.has_body or client_closes:
            super().set_close_on_finish()


class _JsonErrorTask(ErrorTask):
    """Errors waitress answers itself (a Content-Length over http.max_body, bad framing) in
    InfluxDB's JSON error shape, counted like the application's own errors."""

    def execute(self) -> None:
        e = self.request.error
        reason = "too_large" if e.code == 413 else f"http_{e.code}"
        counters = getattr(self.channel.server, "gateway_counters", None)
        if counters is not None:
            counters.error(reason)
        body = json.dumps({"code": CODES.get(e.code, "invalid"),
                           "message": f"{e.reason}: {e.body}"}).encode()
        self.status = f"{e.code} {e.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _KeepAliveChannel(HTTPChannel):
    task_class = _BodilessKeepAliveTask
    error_task_class = _JsonErrorTask


def _count_slow_clients(server, counters) -> None:
    """Counts (as bad input, reason ``slow_client``) each connection that waitress closes for
    idling with a request half received: a slowloris, or a client that stopped mid-body."""
    maintenance = server.maintenance

    def counted(now: float) -> None:
        cutoff = now - server.adj.channel_timeout
        for channel in list(server.active_channels.values()):
            if (channel.request is not None and not channel.requests and not channel.will_close
                    and channel.last_activity < cutoff):
                counters.error("slow_client")
        maintenance(now)

    server.maintenance = counted


def _close_all(server) -> None:
    for channel in list(server._map.values()):
        channel.close()


def create(context) -> WebServer:
    return WebServer(context.config, context.data_dir)
