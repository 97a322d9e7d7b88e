"""The upstream's HTTP connection: a kept-alive connection the upstream closed while idle costs
no error and no backoff (the request goes once more on a new connection); a new connection
that closes without an answer is an error."""

from __future__ import annotations

import socket
import threading

import pytest

from gateway.replication.http import HttpUpstream, UpstreamError

NO_CONTENT = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"


class ScriptedServer:
    """A loopback server that handles connection number i with ``script[i]``: "answer" answers
    one request and then closes the connection (an idle timeout), "drop" reads the request and
    closes without answering. Records the requests it read."""

    def __init__(self, script: list[str]) -> None:
        self.script = script
        self.requests: list[bytes] = []
        self.closed = threading.Semaphore(0)   # released as each connection is closed
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        for action in self.script:
            conn, _ = self.listener.accept()
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(65536)
                head, _, body = request.partition(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                while len(body) < length:
                    body += conn.recv(65536)
                self.requests.append(body)
                if action == "answer":
                    conn.sendall(NO_CONTENT)
                    # The answer says nothing of closing: the client keeps the connection,
                    # which this server now closes as an idle one.
            self.closed.release()

    def close(self) -> None:
        self.listener.close()
        self.thread.join(5)


@pytest.fixture
def server():
    made = []

    def make(script):
        made.append(ScriptedServer(script))
        return made[-1]

    yield make
    for s in made:
        s.close()


def test_a_connection_closed_while_idle_is_replaced_without_an_error(server):
    upstream_server = server(["answer", "answer"])
    upstream = HttpUpstream(f"http://127.0.0.1:{upstream_server.port}", timeout=5)
    assert upstream.post("/write", {}, b"first", {}).status == 204
    assert upstream_server.closed.acquire(timeout=5)   # the first connection, while idle
    assert upstream.post("/write", {}, b"second", {}).status == 204
    assert upstream_server.requests == [b"first", b"second"]
    upstream.close()


def test_a_new_connection_closed_without_an_answer_is_a_network_error(server):
    upstream_server = server(["drop"])
    upstream = HttpUpstream(f"http://127.0.0.1:{upstream_server.port}", timeout=5)
    with pytest.raises(UpstreamError) as e:
        upstream.post("/write", {}, b"only", {})
    assert e.value.kind == "network"
    assert "without an answer" in str(e.value)
    assert upstream_server.requests == [b"only"]


def test_a_reused_connection_is_tried_once_more_only(server):
    upstream_server = server(["answer", "drop"])
    upstream = HttpUpstream(f"http://127.0.0.1:{upstream_server.port}", timeout=5)
    assert upstream.post("/write", {}, b"first", {}).status == 204
    assert upstream_server.closed.acquire(timeout=5)
    with pytest.raises(UpstreamError) as e:   # the new connection fails too: that one counts
        upstream.post("/write", {}, b"second", {})
    assert e.value.kind == "network"
    assert upstream_server.requests == [b"first", b"second"]
