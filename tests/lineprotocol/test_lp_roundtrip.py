"""Property tests: what the serializers write, the parser reads back exactly."""

from __future__ import annotations

import array
import math
import struct

import pytest
from hypothesis import given, settings, strategies as st

from gateway.batch import BOOL, FLOAT, INT, STRING, UINT, UInt
from gateway.lineprotocol import (
    MAX_TIME_NS, MIN_TIME_NS, count_nonfinite, format_line, format_value, parse,
    serialize_bodies, serialize_series, series_key, split_series_key,
)

from lp_support import same_value, type_name

DEFAULT_NS = 777

# Every character that has a meaning somewhere in line protocol, often, plus any other
# (no control characters: names cannot hold them).
_special = st.sampled_from(list(" ,=\"'\\_#\u00e9\u00a0\U0001F36D\u2028i-.0tT"))
_any = st.characters(codec="utf-8", exclude_characters=[chr(c) for c in range(32)] + ["\x7f"])
name_chars = st.one_of(_special, _any)
# A name ending in a backslash cannot be written (test_lp_parse checks that it is refused).
writable = st.text(name_chars, min_size=1, max_size=12).filter(lambda s: not s.endswith("\\"))
names = writable.filter(lambda s: not s.startswith("_"))
# a line that starts with '#' is a comment, so no measurement can; nor with U+FEFF (a BOM)
measurements = names.filter(lambda s: not s.startswith(("#", "\ufeff")))
tag_values = writable
string_values = st.text(st.characters(codec="utf-8"), max_size=40) | \
    st.text(st.sampled_from(list('\\"\n\r\t, =x')), max_size=20)
field_values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**63), 2**63 - 1),
    st.integers(0, 2**64 - 1).map(UInt),
    st.booleans(),
    string_values,
)
times = st.none() | st.integers(MIN_TIME_NS, MAX_TIME_NS)
points = st.tuples(measurements, st.dictionaries(names, tag_values, max_size=4),
                   st.dictionaries(names, field_values, min_size=1, max_size=4), times)


def expected(measurement, tags, fields, ts):
    return [(series_key(measurement, tags, f), DEFAULT_NS if ts is None else ts, v)
            for f, v in fields.items()]


def assert_same_points(got, want):
    assert [(k, ts, type_name(v)) for k, ts, v in got] == [(k, ts, type_name(v)) for k, ts, v in want]
    for (_, _, g), (_, _, w) in zip(got, want):
        assert same_value(g, w), (g, w)


@settings(max_examples=300, deadline=None)
@given(points)
def test_format_line_then_parse_gives_the_point_back(point):
    line = format_line(*point)
    result = parse(line.encode(), default_time_ns=DEFAULT_NS)
    assert result.errors == [], (line, result.errors)
    assert_same_points(list(result.batch), expected(*point))


@settings(max_examples=100, deadline=None)
@given(st.lists(points, min_size=1, max_size=20))
def test_many_lines_in_one_body(pts):
    body = "\n".join(format_line(*p) for p in pts) + "\n"
    result = parse(body.encode(), default_time_ns=DEFAULT_NS)
    assert result.errors == [] and result.lines == len(pts)
    want = [e for p in pts for e in expected(*p)]
    assert_same_points(list(result.batch), want)


@settings(max_examples=300, deadline=None)
@given(names, st.dictionaries(names, tag_values, max_size=4), names)
def test_split_series_key_inverts_series_key(measurement, tags, field):
    assert split_series_key(series_key(measurement, tags, field)) == (measurement, tags, field)


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_format_value_of_a_float_reads_back_bit_exactly(x):
    (_, _, got), = parse(f"m f={format_value(x)} 1".encode()).batch
    assert struct.pack("<d", got) == struct.pack("<d", x)


def _key():
    return st.builds(lambda m, t, f: series_key(m, t, f),
                     measurements, st.dictionaries(names, tag_values, max_size=3), names)


@pytest.mark.parametrize("type_, values", [
    (FLOAT, st.floats(allow_nan=False, allow_infinity=False)),
    (INT, st.integers(-(2**63), 2**63 - 1)),
    (UINT, st.integers(0, 2**64 - 1)),
    (BOOL, st.booleans()),
    (STRING, string_values),
])
def test_serialize_series_then_parse(type_, values):
    @settings(max_examples=60, deadline=None)
    @given(_key(), st.lists(st.tuples(st.integers(MIN_TIME_NS, MAX_TIME_NS), values), max_size=30))
    def check(key, pts):
        stamps = array.array("q", [t for t, _ in pts])
        vals = [v for _, v in pts]
        if type_ == FLOAT:
            vals = array.array("d", vals)
        elif type_ == INT:
            vals = array.array("q", vals)
        elif type_ in (UINT, BOOL):
            vals = array.array("Q", [int(v) for v in vals])
        text = serialize_series(key, type_, stamps, vals)
        assert text.count(b"\n") >= len(pts)
        result = parse(text, default_time_ns=0)
        assert result.errors == []
        conv = {FLOAT: float, INT: int, UINT: UInt, BOOL: bool, STRING: str}[type_]
        want = [(key, t, conv(v)) for t, v in pts]
        assert_same_points(list(result.batch), want)
    check()


def test_serialize_series_float_text():
    stamps = array.array("q", [1, 2, 3, 4, 5, 6])
    vals = array.array("d", [21.37, 0.1, -0.0, 1e300, 2.0**53, 1 / 3])
    text = serialize_series("weather,site=s01 temperature", FLOAT, stamps, vals).decode()
    assert text.splitlines() == [
        "weather,site=s01 temperature=21.37 1",
        "weather,site=s01 temperature=0.1 2",
        "weather,site=s01 temperature=-0 3",
        "weather,site=s01 temperature=1e+300 4",
        "weather,site=s01 temperature=9007199254740992 5",
        "weather,site=s01 temperature=0.3333333333333333 6",
    ]


def test_serialize_series_integer_kinds():
    stamps = array.array("q", [-5, 0])
    assert serialize_series("m f", INT, stamps, array.array("q", [-(2**63), 2**63 - 1])) == \
        b"m f=-9223372036854775808i -5\nm f=9223372036854775807i 0\n"
    assert serialize_series("m f", UINT, stamps, array.array("Q", [0, 2**64 - 1])) == \
        b"m f=0u -5\nm f=18446744073709551615u 0\n"
    assert serialize_series("m f", BOOL, stamps, [True, False]) == b"m f=true -5\nm f=false 0\n"
    assert serialize_series("m f", STRING, stamps, ['say "hi"', "a\\"]) == \
        b'm f="say \\"hi\\"" -5\nm f="a\\\\" 0\n'


def test_non_finite_floats_are_refused_or_skipped_and_counted():
    stamps = array.array("q", [1, 2, 3, 4])
    vals = array.array("d", [1.5, math.nan, math.inf, -math.inf])
    with pytest.raises(ValueError, match=r"'m f': value nan at 2 cannot be written"):
        serialize_series("m f", FLOAT, stamps, vals)
    assert serialize_series("m f", FLOAT, stamps, vals, nonfinite="skip") == b"m f=1.5 1\n"
    assert count_nonfinite(vals) == 3


@pytest.mark.parametrize("key, reason", [
    ("_m f", "reserved"), ("#m f", "comment"), ("m,_t=1 f", "reserved"), ("m _f", "reserved"),
    ("m", "missing fields"), ("m f g", "expected '='"), ("m,t f", "expected '='"),
    ("m,t= f", "missing tag value"), ("m f\n", "expected '='"), ("m\tx f", "control character"),
])
def test_serialize_series_refuses_keys_that_are_not_line_protocol(key, reason):
    with pytest.raises(ValueError, match=reason):
        serialize_series(key, INT, array.array("q", [1]), array.array("q", [1]))


def test_serialize_series_checks_lengths_and_item_sizes():
    with pytest.raises(ValueError, match="values holds 1 items, expected 2"):
        serialize_series("m f", INT, array.array("q", [1, 2]), array.array("q", [1]))
    with pytest.raises(ValueError, match="8-byte items"):
        serialize_series("m f", FLOAT, array.array("q", [1, 2]), array.array("f", [1, 2, 3, 4]))
    # raw bytes are taken as 8-byte words
    words = array.array("d", [0.5, 2.5]).tobytes()
    assert serialize_series(b"m f", FLOAT, array.array("q", [1, 2]).tobytes(), words) == \
        b"m f=0.5 1\nm f=2.5 2\n"


def test_serialize_bodies_cuts_at_line_ends_within_the_limit():
    stamps = array.array("q", [1, 2, 3])
    series = [("m f", INT, stamps, array.array("q", [1, 22, 333])),
              ("m s", STRING, stamps, ["a\nb", "x" * 40, 'q"']),
              ("m b", BOOL, stamps, array.array("B", [1, 0, 1])),
              ("m g", FLOAT, stamps, array.array("d", [math.nan, 0.5, math.inf]))]
    bodies, skipped = serialize_bodies(series, 24)
    assert skipped == 2
    lines = [b"m f=1i 1\n", b"m f=22i 2\n", b"m f=333i 3\n", b'm s="a\nb" 1\n',
             b'm s="' + b"x" * 40 + b'" 2\n', b'm s="q\\"" 3\n', b"m b=true 1\n",
             b"m b=false 2\n", b"m b=true 3\n", b"m g=0.5 2\n"]
    assert b"".join(data for data, _, _ in bodies) == b"".join(lines)
    # a string's line feed is inside its line: the line ends are given, bodies hold whole lines
    for data, points, ends in bodies:
        assert len(data) <= 24 or points == 1
        assert ends[-1] == len(data) and len(ends) == points
    assert [points for _, points, _ in bodies] == [2, 2, 1, 2, 2, 1]
    assert [e for data, _, ends in bodies for e in ends][:3] == [9, 19, 11]


def test_serialize_bodies_refuses_a_bad_key_or_length_naming_the_series():
    one = array.array("q", [1])
    with pytest.raises(ValueError, match="'m _f'.*reserved"):
        serialize_bodies([("m f", INT, one, one), ("m _f", INT, one, one)], 1000)
    with pytest.raises(ValueError, match="'m f': values must hold 1 items"):
        serialize_bodies([("m f", INT, one, array.array("q", [1, 2]))], 1000)
    with pytest.raises(ValueError, match="'m s': 0 values for 1 timestamps"):
        serialize_bodies([("m s", STRING, one, [])], 1000)
    assert serialize_bodies([], 1000) == ([], 0)


@pytest.mark.parametrize("args, match", [
    (("_m", {}, {"f": 1}), "reserves"),
    (("m", {"_t": "v"}, {"f": 1}), "reserves"),
    (("m", {}, {"_f": 1}), "reserves"),
    (("#m", {}, {"f": 1}), "comment"),
    (("m", {}, {}), "no fields"),
    (("m", {}, {"f": math.nan}), "cannot be written"),
    (("m", {}, {"f": math.inf}), "cannot be written"),
    (("m\n", {}, {"f": 1}), "control character"),
    (("m", {"t": "a\tb"}, {"f": 1}), "control character"),
    (("m", {}, {"f": 2**63}), "integer value out of range"),
    (("m", {}, {"f": UInt(-1)}), "unsigned value out of range"),
    (("m", {}, {"f": "x" * 65537}), "longer than 65536 bytes"),
    (("m", {}, {"f": 1}, 2**63 - 1), "timestamp out of range"),
])
def test_format_line_refuses_what_line_protocol_cannot_say(args, match):
    with pytest.raises(ValueError, match=match):
        format_line(*args)


def test_format_line_drops_empty_tag_values_and_sorts_tags():
    assert format_line("m", {"b": "2", "a": "", "B": "1"}, {"f": 1.0, "n": 3}, 9) == \
        "m,B=1,b=2 f=1.0,n=3i 9"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.builds(round, st.floats(-1e16, 1e16), st.integers(0, 10)),      # short decimals
    st.builds(lambda m, e: m * 10.0 ** e, st.integers(-10**6, 10**6), st.integers(-12, 3)),
), min_size=1, max_size=50))
def test_serialized_floats_read_back_bit_exactly(xs):
    stamps = array.array("q", range(len(xs)))
    text = serialize_series("m f", FLOAT, stamps, array.array("d", xs))
    for line, x in zip(text.decode().splitlines(), xs):
        value = line.split("=", 1)[1].split(" ")[0]
        assert struct.pack("<d", float(value)) == struct.pack("<d", x), (value, x)
    got = [v for _, _, v in parse(text).batch]
    assert [struct.pack("<d", v) for v in got] == [struct.pack("<d", x) for x in xs]
