"""Line protocol in and out of a store: what ``gateway write`` and ``gateway export`` do, both
in-process and through the daemon's control socket."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import AsyncIterator

from gateway.datamodel import BOOL, MAX_TIME_NS, MIN_TIME_NS
from gateway.lineprotocol import MAX_ERRORS_KEPT, parse, serialize_series
from gateway.rfc3339 import parse_flux_time

#: Input is parsed in pieces of about this size, cut at line ends (bounds memory for big files).
CHUNK_BYTES = 4 << 20


@dataclass
class ImportReport:
    lines: int = 0
    points: int = 0
    bad_lines: int = 0
    refused: int = 0
    #: (line, column, reason) of bad lines in input order; line 0 for a problem of no line
    errors: list[tuple[int, int, str]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"lines": self.lines, "points": self.points, "bad_lines": self.bad_lines,
                "refused": self.refused, "errors": [list(e) for e in self.errors]}

    @classmethod
    def from_dict(cls, d: dict) -> "ImportReport":
        return cls(int(d["lines"]), int(d["points"]), int(d["bad_lines"]), int(d["refused"]),
                   [(int(a), int(b), str(c)) for a, b, c in d["errors"]])


async def line_chunks(pieces) -> AsyncIterator[tuple[int, bytes]]:
    """Regroups raw input (an iterable or async iterable of bytes) into (number of its first
    line, whole lines) of about CHUNK_BYTES."""
    buf = bytearray()
    line = 1
    async for piece in _aiter(pieces):
        buf += piece
        if len(buf) < CHUNK_BYTES:
            continue
        cut = buf.rfind(b"\n") + 1
        if cut == 0:
            continue
        chunk = bytes(buf[:cut])
        del buf[:cut]
        yield line, chunk
        line += chunk.count(b"\n")
    if buf:
        yield line, bytes(buf)


async def _aiter(pieces):
    if hasattr(pieces, "__aiter__"):
        async for p in pieces:
            yield p
    else:
        for p in pieces:
            yield p


async def import_lines(store, bucket: str, pieces, precision: str = "ns",
                       default_time_ns: int | None = None) -> ImportReport:
    """Parses and writes line protocol; bad lines are reported with their line numbers and
    every good line is stored."""
    report = ImportReport()
    store.bucket(bucket)  # an unknown bucket fails before anything is read
    sender = object()   # one batch at a time, each awaited: a sender for the commit policy
    async for first_line, chunk in line_chunks(pieces):
        result = parse(chunk, precision=precision, default_time_ns=default_time_ns)
        report.lines += result.lines
        report.bad_lines += result.bad_lines
        for e in result.errors:
            if len(report.errors) < MAX_ERRORS_KEPT:
                report.errors.append((e.line + first_line - 1, e.column,
                                      str(e).split(": ", 1)[-1]))
        if result.points:
            written = await store.write(result.batch, bucket, sender=sender)
            report.points += written.points
            report.refused += written.refused + written.too_old + written.series_limited
            if written.problem and len(report.errors) < MAX_ERRORS_KEPT:
                report.errors.append((0, 0, written.problem))
    return report


def parse_time(text: str | None) -> int | None:
    """A time bound: integer nanoseconds since the epoch, or an RFC 3339 timestamp (a date
    alone is midnight UTC, a time without a zone is UTC) taken to the microsecond."""
    if text is None:
        return None
    t = text.strip()
    if t.lstrip("-").isdigit():
        ns = int(t)
    else:
        try:
            ns = parse_flux_time(t)
        except ValueError:
            raise ValueError(f"invalid time {text!r}: use nanoseconds since the epoch or RFC "
                             f"3339 (2024-05-01T12:00:00Z)") from None
        ns -= ns % 1000   # microseconds, the resolution these bounds have always had
    return check_time(ns, repr(text))


def check_time(ns, what: str) -> int:
    """``ns`` if it is a time the store can hold (int64 nanoseconds: 1677-09-21 to
    2262-04-11), else ValueError naming ``what``."""
    if isinstance(ns, bool) or not isinstance(ns, int):
        raise ValueError(f"invalid time {what}: not an integer number of nanoseconds")
    if not MIN_TIME_NS <= ns <= MAX_TIME_NS:
        raise ValueError(f"time {what} is out of range: times are int64 nanoseconds since the "
                         f"epoch (1677-09-21T00:12:43Z to 2262-04-11T23:47:16Z)")
    return ns


@dataclass
class ExportReport:
    series: int = 0
    points: int = 0
    skipped_nonfinite: int = 0

    def as_dict(self) -> dict:
        return {"series": self.series, "points": self.points,
                "skipped_nonfinite": self.skipped_nonfinite}

    @classmethod
    def from_dict(cls, d: dict) -> "ExportReport":
        return cls(int(d["series"]), int(d["points"]), int(d["skipped_nonfinite"]))


async def export_lines(store, bucket: str, start: int | None = None, stop: int | None = None,
                       measurement: str | None = None,
                       report: ExportReport | None = None) -> AsyncIterator[bytes]:
    """Line protocol of the bucket's points, series by series (sorted by key), each series in
    time order. Values come out bit for bit as stored; NaN and infinities, which line protocol
    cannot express, are skipped and counted."""
    report = report if report is not None else ExportReport()
    async for chunk in store.scan_chunks(bucket, start, stop, measurement):
        for cols in chunk:
            if not len(cols):
                continue
            info = cols.series
            values = cols.values
            if info.type == BOOL:
                values = array("Q", values)
            text = serialize_series(info.key, info.type, cols.timestamps, values, nonfinite="skip")
            lines = text.count(b"\n")
            report.series += 1
            report.points += lines
            report.skipped_nonfinite += len(cols) - lines
            yield text
