"""What the HTTP side counts (shown on /metrics and the ingest page); thread-safe."""

from __future__ import annotations

import collections
import threading
import time

#: Bad lines kept for the ingest page, newest last.
RECENT_BAD_LINES = 50
#: Characters of a bad line kept for the ingest page.
EXCERPT_CHARS = 160


class HttpCounters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: collections.Counter = collections.Counter()   # (endpoint, status)
        self.errors: collections.Counter = collections.Counter()     # reason
        self.points_written = 0
        self.lines_received = 0
        self.bad_lines = 0
        self.bytes_received = 0
        self.recent_bad: collections.deque = collections.deque(maxlen=RECENT_BAD_LINES)
        self._bad_seq = 0

    def request(self, endpoint: str, status: int) -> None:
        with self._lock:
            self.requests[(endpoint, status)] += 1

    def error(self, reason: str) -> None:
        with self._lock:
            self.errors[reason] += 1

    def write(self, *, received_bytes: int, lines: int, points: int, bad_lines: int) -> None:
        with self._lock:
            self.bytes_received += received_bytes
            self.lines_received += lines
            self.points_written += points
            self.bad_lines += bad_lines

    def bad_line(self, *, bucket: str, line: int, column: int, reason: str, text: str) -> None:
        with self._lock:
            self._bad_seq += 1
            self.recent_bad.append({"id": self._bad_seq, "time": time.time(), "bucket": bucket, "line": line,
                                    "column": column, "reason": reason,
                                    "excerpt": text[:EXCERPT_CHARS]})

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "requests": [{"endpoint": e, "status": s, "count": n}
                             for (e, s), n in sorted(self.requests.items())],
                "errors": dict(self.errors),
                "points_written": self.points_written,
                "lines_received": self.lines_received,
                "bad_lines": self.bad_lines,
                "bytes_received": self.bytes_received,
                "recent_bad_lines": list(self.recent_bad),
            }
