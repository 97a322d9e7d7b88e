"""HTTP POSTs to an upstream with a limit on every phase, run on a worker thread.

Why ``http.client`` on a thread rather than an asyncio client: it is the standard library's,
its socket timeout bounds connecting, each send and each read, and the answer is read here in
pieces against a total deadline, so an upstream that drips its answer a byte at a time cannot
hold a stream longer than ``timeout`` either. Redirects are never followed: a write endpoint
that redirects is misconfigured (or hostile), and the answer names where it pointed. The
answer's body is untrusted and read up to :data:`MAX_ANSWER_BYTES`.
"""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
import time
import urllib.parse
from dataclasses import dataclass, field

#: Upstream answers (error messages) are kept up to this size; the rest is not read.
MAX_ANSWER_BYTES = 64 * 1024


class UpstreamError(Exception):
    """The upstream could not be reached or gave no usable answer (network, DNS, TLS, a
    stalled or malformed answer). ``kind`` is a short word for counters."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class Answer:
    status: int
    reason: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def text(self, limit: int = 300) -> str:
        """The answer's words for an error message: printable, one line, bounded."""
        words = self.body[:limit].decode("utf-8", "replace")
        words = "".join(c if c.isprintable() else " " for c in words).strip()
        return words or self.reason


class _ClosedWhileIdle(Exception):
    """A reused connection failed before any answer: the upstream had closed it while idle."""


class HttpUpstream:
    """One keep-alive connection to the upstream at ``url``; not thread-safe (one stream)."""

    def __init__(self, url: str, timeout: float, ca_file: str | None = None,
                 basic_auth: tuple[str, str] | None = None) -> None:
        parts = urllib.parse.urlsplit(url)
        self.url = url
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.https else 80)
        self.base_path = parts.path.rstrip("/")
        self.timeout = timeout
        self._ssl = ssl.create_default_context(cafile=ca_file) if self.https else None
        self._auth = ("Basic " + base64.b64encode(f"{basic_auth[0]}:{basic_auth[1]}".encode())
                      .decode()) if basic_auth else None
        self._conn: http.client.HTTPConnection | None = None
        #: Answers read on the current connection: a kept-alive one may be closed by the
        #: upstream while idle (VictoriaMetrics' -http.connTimeout, a proxy's idle timeout).
        self._answers_on_conn = 0

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._answers_on_conn = 0
            if self.https:
                self._conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                                         context=self._ssl)
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def post(self, path: str, query: dict[str, str], body: bytes,
             headers: dict[str, str]) -> Answer:
        """Sends one POST and reads the answer. Raises UpstreamError for anything that is not
        an HTTP answer within ``timeout``.

        A kept-alive connection the upstream closed while it was idle fails the next request
        before any answer: that request is sent once more at once on a new connection, as
        HTTP clients do, instead of counting an error and backing off. (Had the upstream taken
        it after all, the copy is one batch sent twice, which every upstream here absorbs and
        the stream's resend bound covers.)"""
        try:
            return self._post_once(path, query, body, headers)
        except _ClosedWhileIdle:
            return self._post_once(path, query, body, headers)

    def _post_once(self, path: str, query: dict[str, str], body: bytes,
                   headers: dict[str, str]) -> Answer:
        target = self.base_path + path
        if query:
            target += "?" + urllib.parse.urlencode(query)
        headers = {"Content-Length": str(len(body)), **headers}
        if self._auth and "Authorization" not in headers:
            headers["Authorization"] = self._auth
        deadline = time.monotonic() + self.timeout
        conn = self._connection()
        try:
            conn.request("POST", target, body=body, headers=headers)
            response = conn.getresponse()
            answer = Answer(response.status, response.reason or "",
                            {k.lower(): v for k, v in response.getheaders()})
            try:
                answer.body = self._read_body(response, deadline)
            finally:
                response.close()  # the connection can take the next request
        except UpstreamError:
            self.close()
            raise
        except ssl.SSLCertVerificationError as e:
            self.close()
            raise UpstreamError("tls", f"TLS certificate not accepted: {e.verify_message or e}") from None
        except ssl.SSLError as e:
            self.close()
            raise UpstreamError("tls", f"TLS error: {e.reason or e}") from None
        except socket.gaierror as e:
            self.close()
            raise UpstreamError("dns", f"cannot resolve {self.host}: {e.strerror}") from None
        except (socket.timeout, TimeoutError):
            self.close()
            raise UpstreamError("timeout", f"no answer within {self.timeout:g} s") from None
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
            reused = self._answers_on_conn > 0
            self.close()
            if reused:
                raise _ClosedWhileIdle() from None
            what = ("closed the connection without an answer"
                    if isinstance(e, http.client.RemoteDisconnected) else e.strerror or str(e))
            raise UpstreamError("network", what) from None
        except http.client.HTTPException as e:
            self.close()
            raise UpstreamError("malformed", f"malformed answer: {type(e).__name__}: {e}") from None
        except OSError as e:
            self.close()
            raise UpstreamError("network", f"{e.strerror or e}") from None
        self._answers_on_conn += 1
        if answer.headers.get("connection", "").lower() == "close" or response.will_close:
            self.close()
        return answer

    def _read_body(self, response: http.client.HTTPResponse, deadline: float) -> bytes:
        """The answer's body up to MAX_ANSWER_BYTES; an answer that does not end before the
        deadline is an error (a stalled or dripping upstream)."""
        out = bytearray()
        while True:
            if time.monotonic() > deadline:
                raise UpstreamError("timeout", f"the answer did not end within {self.timeout:g} s "
                                    f"({len(out)} bytes read)")
            piece = response.read1(16384)
            if not piece:
                return bytes(out)
            if len(out) < MAX_ANSWER_BYTES:
                out += piece[:MAX_ANSWER_BYTES - len(out)]
            elif response.length is None or response.length > MAX_ANSWER_BYTES:
                self.close()  # the rest is not worth reading
                return bytes(out)
