"""Points read from the store, and the byte-bounded bodies they are sent in.

A :class:`Chunk` is what a stream hands a sender at once: the points of some series (from
sealed blocks or from heads) that become durable together in the stream's position. A sender
turns it into bodies of at most ``batch_bytes`` before compression; :func:`split_lines` halves a
body at a line end when the upstream finds it too large (413) or refuses part of it (400).
"""

from __future__ import annotations

import bisect
from array import array
from dataclasses import dataclass, field
from typing import Any, Iterator

from gateway.lineprotocol import serialize_bodies


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
class Lines:
    """Line protocol lines, each ending in a newline. A string value may hold line feeds of
    its own (they do not end its line): ``ends`` then lists the offset after each line; None
    means every newline ends a line (numbers and booleans only)."""

    data: bytes
    ends: list[int] | None = None

    def count(self) -> int:
        return self.data.count(b"\n") if self.ends is None else len(self.ends)

    def cut_within(self, limit: int) -> int:
        """The end of the last whole line within the first ``limit`` bytes (0: none)."""
        if self.ends is None:
            return self.data.rfind(b"\n", 0, limit) + 1
        return self.ends[bisect.bisect_right(self.ends, limit) - 1] if self.ends[0] <= limit else 0

    def cut_near(self, at: int) -> int:
        """The line end nearest before ``at`` (else the first after it); 0 or len(data): none."""
        cut = self.cut_within(at)
        if cut == 0:
            if self.ends is None:
                cut = self.data.find(b"\n", at) + 1
            else:
                cut = next((e for e in self.ends if e > at), 0)
        return cut

    def split_at(self, cut: int) -> tuple["Lines", "Lines"]:
        if self.ends is None:
            return Lines(self.data[:cut]), Lines(self.data[cut:])
        i = bisect.bisect_right(self.ends, cut)
        return (Lines(self.data[:cut], self.ends[:i]),
                Lines(self.data[cut:], [e - cut for e in self.ends[i:]]))

    def lines(self) -> list[bytes]:
        if self.ends is None:
            return [line + b"\n" for line in self.data.split(b"\n")[:-1]]
        return [self.data[a:b] for a, b in zip([0] + self.ends, self.ends)]


@dataclass(slots=True)
class Body:
    """Line protocol lines and how many points they hold; ``ends`` as in :class:`Lines`;
    ``wire`` is the body as sent (compressed, with its headers) once a sender prepared it
    ahead."""

    data: bytes
    points: int
    wire: tuple[bytes, dict[str, str]] | None = field(default=None, init=False, repr=False)
    ends: list[int] | None = field(default=None, kw_only=True, repr=False)

    def as_lines(self) -> Lines:
        return Lines(self.data, self.ends)


def line_protocol_bodies(chunk: Chunk, limit: int) -> tuple[list[Body], int]:
    """Line protocol of the chunk, series by series, in bodies of at most ``limit`` bytes cut
    at line ends (a single longer line travels alone), formatted in one C call; and how many
    points had no line protocol form (NaN, infinities) and were left out."""
    parts, skipped = serialize_bodies(
        [(s.info.key, s.info.type, s.timestamps, s.values) for s in chunk.series], limit)
    return [Body(data, points, ends=ends) for data, points, ends in parts], skipped


def bodies(texts: list[Lines], limit: int) -> Iterator[Body]:
    """Groups runs of lines into bodies of at most ``limit`` bytes (a single line longer than
    that travels alone): for texts made in Python (JSON lines)."""
    parts: list[Lines] = []
    size = 0
    for text in texts:
        while text.data:
            room = limit - size
            if len(text.data) <= room:
                parts.append(text)
                size += len(text.data)
                break
            cut = text.cut_within(room)
            if cut == 0 and not parts:
                cut = text.cut_near(0) or len(text.data)  # one line longer than the limit
            if cut:
                head, text = text.split_at(cut)
                parts.append(head)
            yield _body(parts)
            parts, size = [], 0
    if parts:
        yield _body(parts)


def _body(parts: list[Lines]) -> Body:
    data = b"".join(p.data for p in parts)
    if all(p.ends is None for p in parts):
        return Body(data, data.count(b"\n"))
    ends, base = [], 0
    for p in parts:
        ends += [base + e for e in (p.ends if p.ends is not None else
                                    [i + 1 for i in _newlines(p.data)])]
        base += len(p.data)
    return Body(data, len(ends), ends=ends)


def _newlines(data: bytes) -> Iterator[int]:
    i = data.find(b"\n")
    while i >= 0:
        yield i
        i = data.find(b"\n", i + 1)


def split_lines(body: Body) -> tuple[Body, Body] | None:
    """The body cut in two at the line end nearest its middle, or None for a single line."""
    if body.points <= 1:
        return None
    lines = body.as_lines()
    cut = lines.cut_near(len(body.data) // 2)
    if cut == 0 or cut >= len(body.data):
        return None
    a, b = lines.split_at(cut)
    return _body([a]), _body([b])
