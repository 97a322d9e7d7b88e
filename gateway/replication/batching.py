"""Points read from the store, and the byte-bounded bodies they are sent in.

A :class:`Chunk` is what a stream hands a sender at once: the points of some series (from
sealed blocks or from heads) that become durable together in the stream's position. A sender
turns it into bodies of at most ``batch_bytes`` before compression; :func:`split_lines` halves a
body at a line end when the upstream finds it too large (413) or refuses part of it (400).
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any, Iterator

from gateway.lineprotocol import serialize_series

_BOOL = 4


@dataclass(slots=True)
class SeriesPoints:
    """Points of one series: ``info`` is the catalogue's SeriesInfo, times in ns."""

    info: Any
    timestamps: array
    values: Any

    def __len__(self) -> int:
        return len(self.timestamps)


@dataclass
class Chunk:
    bucket: str
    series: list[SeriesPoints] = field(default_factory=list)

    @property
    def points(self) -> int:
        return sum(len(s) for s in self.series)


@dataclass(slots=True)
class Body:
    """Line protocol lines (each ending in a newline) and how many points they hold."""

    data: bytes
    points: int


def line_protocol(chunk: Chunk) -> tuple[list[bytes], int]:
    """Line protocol of the chunk, series by series (each a run of lines), and how many
    points had no line protocol form (NaN, infinities) and were left out."""
    texts, skipped = [], 0
    for s in chunk.series:
        values = array("Q", s.values) if s.info.type == _BOOL else s.values
        text = serialize_series(s.info.key, s.info.type, s.timestamps, values, nonfinite="skip")
        skipped += len(s) - text.count(b"\n")
        if text:
            texts.append(text)
    return texts, skipped


def bodies(texts: list[bytes], limit: int) -> Iterator[Body]:
    """Groups runs of lines into bodies of at most ``limit`` bytes (a single line longer than
    that travels alone)."""
    parts: list[bytes] = []
    size = 0
    for text in texts:
        while text:
            room = limit - size
            if len(text) <= room:
                parts.append(text)
                size += len(text)
                break
            cut = text.rfind(b"\n", 0, room) + 1
            if cut == 0 and not parts:
                cut = text.find(b"\n") + 1 or len(text)  # one line longer than the limit
            if cut:
                parts.append(text[:cut])
                text = text[cut:]
            data = b"".join(parts)
            yield Body(data, data.count(b"\n"))
            parts, size = [], 0
    if parts:
        data = b"".join(parts)
        yield Body(data, data.count(b"\n"))


def split_lines(body: Body) -> tuple[Body, Body] | None:
    """The body cut in two at the line end nearest its middle, or None for a single line."""
    if body.points <= 1:
        return None
    middle = len(body.data) // 2
    cut = body.data.rfind(b"\n", 0, middle) + 1
    if cut == 0:
        cut = body.data.find(b"\n", middle) + 1
    if cut == 0 or cut >= len(body.data):
        return None
    a, b = body.data[:cut], body.data[cut:]
    n = a.count(b"\n")
    return Body(a, n), Body(b, body.points - n)
