"""Property test of what a line protocol stream sends: sealed blocks (through the block codec,
as the drain reads them) encoded into compressed, byte-bounded bodies parse back, with the
product's parser, to the same points in the same order, for every value type and awkward
series keys; only NaN and infinities are left out, and counted."""

from __future__ import annotations

import gzip
import math
import struct
from array import array

from hypothesis import given, settings, strategies as st

from gateway import codec
from gateway.datamodel import BOOL, FLOAT, INT, STRING, UINT, UInt, series_key
from gateway.lineprotocol import parse
from gateway.replication.batching import Chunk, SeriesPoints, split_lines
from gateway.replication.influxdb import InfluxV2Sender
from gateway.replication.status import StreamStatus
from gateway.store.series_table import SeriesInfo
from replication_support import stream_config

# Characters with a meaning somewhere in line protocol, often, and any other printable one.
_awkward = st.sampled_from(list(" ,=\"\\#_'\u00e9\u00a0\u2028\U0001F36Di0.-"))
_printable = st.characters(codec="utf-8", exclude_characters=[chr(c) for c in range(32)] + ["\x7f"])
_names = (st.text(st.one_of(_awkward, _printable), min_size=1, max_size=10)
          .filter(lambda s: not s.endswith("\\") and not s.startswith("_")))
_measurements = _names.filter(lambda s: not s.startswith(("#", "\ufeff")))
_keys = st.builds(series_key, _measurements, st.dictionaries(_names, _names, max_size=3), _names)
_times = st.integers(-(2**62), 2**62)

_VALUES = {
    FLOAT: st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([21.37, -0.0, 1e-300, 0.1]),
    INT: st.integers(-(2**63), 2**63 - 1),
    UINT: st.integers(0, 2**64 - 1),
    BOOL: st.booleans(),
    STRING: st.text(st.characters(codec="utf-8"), max_size=30)
    | st.text(st.sampled_from(list('\\"\n\r\t, =x')), max_size=12),
}


@st.composite
def _series(draw, sid: int):
    type_ = draw(st.sampled_from(sorted(_VALUES)))
    points = draw(st.lists(st.tuples(_times, _VALUES[type_]), min_size=1, max_size=40))
    return sid, draw(_keys), type_, points


def _block(sid, key, type_, points) -> SeriesPoints:
    """The series as the stream reads it: one block through the block codec."""
    stamps = array("q", [t for t, _ in points])
    values = [v for _, v in points]
    columns = {FLOAT: "d", INT: "q", UINT: "Q", BOOL: "B"}
    if type_ != STRING:
        values = array(columns[type_], [int(v) if type_ == BOOL else v for v in values])
    name = {FLOAT: "float", INT: "int", UINT: "uint", BOOL: "bool", STRING: "string"}[type_]
    ts, vals = codec.decode(codec.encode(stamps, values, type=name))
    return SeriesPoints(SeriesInfo(sid, key, type_), ts, vals)


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, float) and isinstance(b, float) and \
            struct.pack("<d", a) == struct.pack("<d", b)
    return type(a) is type(b) and a == b


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 8).flatmap(lambda n: st.tuples(*[_series(i) for i in range(n)])),
       st.sampled_from(["1kB", "4kB", "500kB"]), st.sampled_from([0, 1, 6]))
def test_blocks_encoded_for_sending_parse_back_to_the_same_points(series, batch_bytes, level):
    config = stream_config("influxdb_v2", "http://127.0.0.1:1", org="o", bucket="b",
                           batch_bytes=batch_bytes, gzip_level=level)
    status = StreamStatus("up", "influxdb_v2", config.url)
    chunk = Chunk("raw", [_block(*s) for s in series])
    limit = int(config.batch_bytes)

    sender = InfluxV2Sender(config, status)
    bodies = sender.prepare(chunk)

    got = []
    for body in bodies:
        wire, headers = body.wire
        data = gzip.decompress(wire) if level else wire
        assert data == body.data
        assert headers == ({"Content-Encoding": "gzip"} if level else {})
        assert data.endswith(b"\n") and (len(data) <= limit or data.count(b"\n") == 1)
        result = parse(data, default_time_ns=0)
        assert result.errors == []
        assert body.points == result.points == len(sender.items(body))
        got += list(result.batch)
        halves = split_lines(body)  # what a 413 or a 400 does to it
        if body.points > 1:
            assert halves[0].data + halves[1].data == body.data
            assert [h.points for h in halves] == [parse(h.data).points for h in halves]
            assert halves[0].points + halves[1].points == body.points
        else:
            assert halves is None
    convert = {FLOAT: float, INT: int, UINT: UInt, BOOL: bool, STRING: str}
    want = [(key, t, convert[type_](v)) for _, key, type_, points in series for t, v in points
            if not (type_ == FLOAT and not math.isfinite(v))]
    assert [(k, t) for k, t, _ in got] == [(k, t) for k, t, _ in want]
    assert all(_same(g, w) for (_, _, g), (_, _, w) in zip(got, want)), (got, want)
    nonfinite = sum(1 for _, _, type_, points in series for _, v in points
                    if type_ == FLOAT and not math.isfinite(v))
    assert status.counters["skipped_nonfinite"] == nonfinite
