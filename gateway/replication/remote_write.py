"""The Prometheus remote-write sender: protobuf ``WriteRequest`` bodies, snappy-compressed
(the block format), to any remote-write receiver (Prometheus, VictoriaMetrics, Mimir, Thanos).

Name mapping (docs/replication.md): a store series ``measurement,tags field`` becomes the
metric ``<measurement>_<field>`` with one label per tag; characters a metric name or label name
cannot hold become ``_``, a name starting with a digit gets a leading ``_``, and a tag whose
name starts with ``__`` (reserved) gets the prefix ``tag``. Values become float64 (integers
beyond 2^53 round, booleans are 1 and 0); strings and non-finite values are skipped and counted.
Times become milliseconds (rounded down); of several points of a series within one millisecond
the last written is sent.

Messages (field numbers from the remote-write 1.0 specification)::

    WriteRequest { repeated TimeSeries timeseries = 1; }
    TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
    Label        { string name = 1; string value = 2; }
    Sample       { double value = 1; int64 timestamp = 2; }
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

import cramjam

from gateway.replication.batching import Body, Chunk
from gateway.replication.sender import HttpSender

_METRIC_BAD = re.compile(r"[^a-zA-Z0-9_:]")
_LABEL_BAD = re.compile(r"[^a-zA-Z0-9_]")
_DOUBLE = struct.Struct("<d")
_STRING, _BOOL, _FLOAT = 5, 4, 1


def metric_name(measurement: str, field: str) -> str:
    name = _METRIC_BAD.sub("_", f"{measurement}_{field}")
    return "_" + name if name[0].isdigit() else name


def label_name(tag: str) -> str:
    name = _LABEL_BAD.sub("_", tag) or "_"
    if name[0].isdigit():
        name = "_" + name
    return "tag" + name if name.startswith("__") else name


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1  # int64 fields: negatives as their two's complement
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def encode_series(labels: list[tuple[str, str]], samples) -> bytes:
    """One TimeSeries, length-delimited as field 1 of WriteRequest; labels sorted by name."""
    parts = [_field(1, _field(1, n.encode()) + _field(2, v.encode())) for n, v in sorted(labels)]
    for ms, value in samples:
        parts.append(_field(2, b"\x09" + _DOUBLE.pack(value) + b"\x10" + _varint(ms)))
    return _field(1, b"".join(parts))


@dataclass(slots=True)
class SeriesBody(Body):
    """A WriteRequest as its encoded TimeSeries (so it can be cut between series)."""

    series: list = None
    names: list = None


class RemoteWriteSender(HttpSender):
    path = ""
    content_type = "application/x-protobuf"

    def __init__(self, config, status) -> None:
        auth = (config.user, config.password.reveal()) if config.user else None
        super().__init__(config, status, basic_auth=auth)
        self._token = config.token.reveal() if config.token is not None else None

    def headers(self) -> dict[str, str]:
        h = {"X-Prometheus-Remote-Write-Version": "0.1.0"}
        if self._token:
            h["Authorization"] = f"Bearer {self._token}"
        return h

    def compress(self, data: bytes) -> tuple[bytes, dict[str, str]]:
        return bytes(cramjam.snappy.compress_raw(data)), {"Content-Encoding": "snappy"}

    def encode(self, chunk: Chunk) -> list[Body]:
        limit = int(self.config.batch_bytes)
        out: list[Body] = []
        series, names, size, points = [], [], 0, 0
        for sp in chunk.series:
            info = sp.info
            if info.type == _STRING:
                self.status.counters["skipped_strings"] += len(sp)
                continue
            samples = self._samples(sp)
            if not samples:
                continue
            labels = [("__name__", metric_name(info.measurement, info.field))]
            labels += [(label_name(k), v) for k, v in info.tags.items()]
            # A long series is cut so that no TimeSeries alone exceeds the limit (19 bytes a sample).
            step = max(1, limit // 20)
            for i in range(0, len(samples), step):
                piece = samples[i:i + step]
                encoded = encode_series(labels, piece)
                if series and size + len(encoded) > limit:
                    out.append(self._body(series, names, points))
                    series, names, size, points = [], [], 0, 0
                series.append(encoded)
                names.append(f"{labels[0][1]}{dict(labels[1:])} x{len(piece)}")
                size += len(encoded)
                points += len(piece)
        if series:
            out.append(self._body(series, names, points))
        return out

    def _samples(self, sp) -> list[tuple[int, float]]:
        by_ms: dict[int, float] = {}
        skipped = 0
        is_float = sp.info.type == _FLOAT
        for ts, v in zip(sp.timestamps, sp.values):
            v = float(v)
            if is_float and (v != v or v in (float("inf"), float("-inf"))):
                skipped += 1
                continue
            by_ms[ts // 1_000_000] = v  # time order: the last written of a millisecond wins
        if skipped:
            self.status.counters["skipped_nonfinite"] += skipped
        return sorted(by_ms.items())

    @staticmethod
    def _body(series: list, names: list, points: int) -> SeriesBody:
        return SeriesBody(b"".join(series), points, list(series), list(names))

    def split(self, body):
        if len(body.series) <= 1:
            return None
        half = len(body.series) // 2
        counts = [int(n.rsplit(" x", 1)[1]) for n in body.names]
        a = self._body(body.series[:half], body.names[:half], sum(counts[:half]))
        b = self._body(body.series[half:], body.names[half:], sum(counts[half:]))
        return a, b

    def items(self, body) -> list[tuple[bytes, int]]:
        return [(n.encode(), int(n.rsplit(" x", 1)[1])) for n in body.names]
