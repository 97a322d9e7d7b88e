"""What a stream shows: its state, counters, last error and the bounded dead-letter view.

Written by the stream's own tasks and worker thread, read by ``stats()`` from any thread:
every figure is a plain int or str replaced whole, and the dead-letter deque is copied under
the GIL, so a snapshot needs no lock.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field

#: Rejected lines kept for the operator to read (all of them are counted).
DEAD_LETTERS_KEPT = 100
#: A dead letter keeps this much of its line and of the upstream's message.
DEAD_LETTER_TEXT = 500

STATES = ("starting", "sending", "idle", "backing_off", "paused", "stopped")


@dataclass
class DeadLetter:
    time: float
    bucket: str
    line: str
    message: str

    def as_dict(self) -> dict:
        return {"time": self.time, "bucket": self.bucket, "line": self.line,
                "message": self.message}


@dataclass
class StreamStatus:
    name: str
    kind: str
    url: str
    state: str = "starting"
    last_error: str | None = None
    last_error_at: float | None = None
    last_ack_at: float | None = None
    retry_at: float | None = None
    counters: collections.Counter = field(default_factory=collections.Counter)
    dead_letters: collections.deque = field(
        default_factory=lambda: collections.deque(maxlen=DEAD_LETTERS_KEPT))

    def error(self, kind: str, message: str) -> None:
        """Counts an error by kind and keeps its words (which name the stream)."""
        self.counters[f"errors_{kind}"] += 1
        self.counters["errors"] += 1
        self.last_error = f"stream {self.name}: {message}"
        self.last_error_at = time.time()

    def dead_letter(self, bucket: str, line: bytes, message: str, points: int = 1) -> None:
        self.counters["rejected_points"] += points
        self.dead_letters.append(DeadLetter(time.time(), bucket,
                                            line[:DEAD_LETTER_TEXT].decode("utf-8", "replace").rstrip("\n"),
                                            message[:DEAD_LETTER_TEXT]))
