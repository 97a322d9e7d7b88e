"""What every HTTP sender shares: one POST's answer turned into an outcome.

2xx with an empty body (204) is an acknowledgement. 413 halves the body until it fits; 400
halves it until the refused lines stand alone, then dead-letters each with the upstream's
message and goes on (an upstream that refuses a whole batch for one line thus still gets the
rest). 429 and 503 wait for ``Retry-After`` (capped); 401/403 pause the stream; other answers,
redirects included, and every network, TLS or timeout error retry with backoff. Anything not
acknowledged never advances the stream's position: the sender raises instead.
"""

from __future__ import annotations

import time

from gateway.backoff import retry_after
from gateway.replication.batching import Body, split_lines
from gateway.replication.gzip_bodies import gzip_compress
from gateway.replication.http import Answer, HttpUpstream, UpstreamError
from gateway.replication.status import StreamStatus


class RetryLater(Exception):
    """The upstream did not take the data; try the same data again after ``delay`` seconds
    (None: the stream's backoff decides)."""

    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class Paused(RetryLater):
    """The upstream refuses our credentials (401/403): the stream keeps its data and retries
    slowly until someone fixes the configuration."""


class HttpSender:
    """Base of the HTTP senders: subclasses give ``path``, ``query``, ``headers`` and turn a
    chunk into bodies (:meth:`encode`)."""

    path = "/"
    content_type = "text/plain; charset=utf-8"
    #: whether a refused body is cut in halves to isolate bad lines (line protocol can be)
    splittable = True

    def __init__(self, config, status: StreamStatus, basic_auth=None) -> None:
        self.config = config
        self.status = status
        self.upstream = HttpUpstream(config.url, float(config.timeout), config.ca_file, basic_auth)
        self._sent_at = 0.0

    def query(self) -> dict[str, str]:
        return {}

    def headers(self) -> dict[str, str]:
        return {}

    def close(self) -> None:
        self.upstream.close()

    # -- worker threads -----------------------------------------------------------------
    def prepare(self, chunk) -> list[Body]:
        """The chunk's bodies, compressed ahead of sending (the stream encodes the next batch
        on its own thread while the upstream takes the current one)."""
        prepared = self.encode(chunk)
        for body in prepared:
            body.wire = self.compress(body.data)
        return prepared

    def deliver(self, bucket: str, bodies: list[Body]) -> None:
        """Sends every body; returns once all are acknowledged or dead-lettered, raises
        RetryLater (or Paused) otherwise. Runs on the stream's worker thread."""
        for body in bodies:
            self._deliver(bucket, body)

    def _deliver(self, bucket: str, body: Body) -> None:
        answer = self._post(body)
        status = answer.status
        if status in (200, 204) and not answer.body.strip():
            self.status.counters["points_sent"] += body.points
            self.status.counters["batches_sent"] += 1
            self.status.last_ack_at = time.time()
            return
        words = f"{status} {answer.text()}"
        if status == 413 and self.splittable:
            self.status.counters["batches_split"] += 1
            halves = self.split(body)
            if halves is None:
                self._reject(bucket, body, f"upstream answered {words} for a single line")
                return
            for half in halves:
                self._deliver(bucket, half)
            return
        if status == 400 and self.splittable:
            halves = self.split(body)
            if halves is None:
                self._reject(bucket, body, f"upstream answered {words}")
                return
            self.status.counters["batches_split"] += 1
            for half in halves:
                self._deliver(bucket, half)
            return
        if status in (401, 403):
            self.status.error("auth", f"upstream refused the credentials: {words}")
            raise Paused(self.status.last_error)
        if status in (429, 503):
            self.status.error("throttled", f"upstream asks to wait: {words}")
            raise RetryLater(self.status.last_error, retry_after(answer.headers.get("retry-after")))
        if 300 <= status < 400:
            where = answer.headers.get("location", "(no Location)")
            self.status.error("redirect", f"upstream redirects to {where} ({status}); "
                              f"redirects are not followed: fix the url")
            raise RetryLater(self.status.last_error)
        if 200 <= status < 300:
            self.status.error("malformed", f"upstream answered {status} with a body where an "
                              f"empty acknowledgement belongs: {answer.text()!r}")
            raise RetryLater(self.status.last_error)
        kind = "server" if status >= 500 else "refused"
        self.status.error(kind, f"upstream answered {words}")
        raise RetryLater(self.status.last_error)

    def split(self, body: Body) -> tuple[Body, Body] | None:
        """The body in two halves, or None when it holds a single item (line protocol: a
        line)."""
        return split_lines(body)

    def items(self, body: Body) -> list[tuple[bytes, int]]:
        """The body's items as the dead-letter view shows them, with their points."""
        return [(line, 1) for line in body.as_lines().lines()]

    def compress(self, data: bytes) -> tuple[bytes, dict[str, str]]:
        if self.config.gzip_level:
            return gzip_compress(data, self.config.gzip_level), {"Content-Encoding": "gzip"}
        return data, {}

    def _reject(self, bucket: str, body: Body, message: str) -> None:
        for item, points in self.items(body):
            self.status.dead_letter(bucket, item, message, points)

    def _post(self, body: Body) -> Answer:
        data, encoding = body.wire or self.compress(body.data)
        headers = {"Content-Type": self.content_type, **encoding, **self.headers()}
        self._throttle(len(data))
        try:
            answer = self.upstream.post(self.path, self.query(), data, headers)
        except UpstreamError as e:
            self.status.error(e.kind, f"{self.config.url}: {e}")
            raise RetryLater(self.status.last_error) from None
        self.status.counters["bytes_sent"] += len(data)
        self.status.counters["requests"] += 1
        return answer

    def _throttle(self, size: int) -> None:
        """The optional bandwidth cap: a body may leave once the previous ones had their
        share of time."""
        cap = self.config.bandwidth
        if not cap:
            self._sent_at = time.monotonic()
            return
        now = time.monotonic()
        wait = self._sent_at - now
        if wait > 0:
            time.sleep(wait)
        self._sent_at = max(now, self._sent_at) + size / int(cap)
