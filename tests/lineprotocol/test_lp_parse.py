"""Parser behaviour beyond the vectors: limits, UTF-8, partial writes, precision, hostile input."""

from __future__ import annotations

import math
import struct
import time

import pytest
from hypothesis import given, settings, strategies as st

from gateway.batch import Batch
from gateway.errors import GatewayError, LineProtocolError
from gateway.lineprotocol import MAX_STRING_BYTES, parse


def points(result):
    return list(result.batch)


def reasons(result):
    return [(e.line, e.column, str(e).split(": ", 1)[1]) for e in result.errors]


def test_string_of_exactly_64_kib_is_accepted_one_byte_more_is_not():
    ok = b'm s="' + b"x" * MAX_STRING_BYTES + b'" 1\n'
    too_long = b'm s="' + b"y" * (MAX_STRING_BYTES + 1) + b'" 2\n'
    result = parse(ok + too_long + b"m n=1i 3", default_time_ns=0)
    assert [(k, ts) for k, ts, _ in points(result)] == [("m s", 1), ("m n", 3)]
    assert len(points(result)[0][2]) == MAX_STRING_BYTES
    assert reasons(result) == [(2, 5, "string longer than 64 KiB")]


def test_string_limit_counts_unescaped_bytes():
    # 131072 raw bytes that read as 65536 double quotes
    body = b'\\"' * MAX_STRING_BYTES
    result = parse(b'm s="' + body + b'" 1', default_time_ns=0)
    assert result.bad_lines == 0
    assert points(result)[0][2] == '"' * MAX_STRING_BYTES


def test_string_limit_is_in_utf8_bytes():
    text = "é" * (MAX_STRING_BYTES // 2)  # two bytes each
    assert parse(f'm s="{text}" 1'.encode(), default_time_ns=0).bad_lines == 0
    result = parse(f'm s="{text}x" 1'.encode(), default_time_ns=0)
    assert reasons(result) == [(1, 5, "string longer than 64 KiB")]


def test_series_key_longer_than_the_batch_limit_is_rejected():
    long_tag = "v" * 70_000
    result = parse(f"m,t={long_tag} f=1i 1\nm g=2i 2".encode(), default_time_ns=0)
    assert reasons(result) == [(1, 1, "series key longer than 65530 bytes (the store's limit)")]
    assert [k for k, _, _ in points(result)] == ["m g"]


@pytest.mark.parametrize("key_bytes, ok", [(65530, True), (65531, False), (65535, False)])
def test_series_keys_the_series_file_cannot_hold_are_refused(key_bytes, ok):
    # "m,t=<v> f": the series file keeps keys up to 65530 bytes; longer ones were cut there.
    tag = "v" * (key_bytes - len("m,t= f"))
    result = parse(f"m,t={tag} f=1i 1".encode(), default_time_ns=0)
    if ok:
        assert [len(k.encode()) for k, _, _ in points(result)] == [key_bytes]
    else:
        assert reasons(result) == [(1, 1, "series key longer than 65530 bytes (the store's limit)")]


@pytest.mark.parametrize("bad, column", [
    (b"m\xff f=1", 2),                    # not a UTF-8 lead byte
    (b"m,t=\xc3 f=1", 5),                 # truncated sequence
    (b"m f\xed\xa0\x80=1", 4),            # a UTF-16 surrogate
    (b"m s=\"ok\xc0\xaf\" 1", 8),         # overlong encoding
    (b"\xf4\x90\x80\x80 f=1", 1),         # above U+10FFFF
])
def test_invalid_utf8_in_names_and_strings_is_an_error(bad, column):
    result = parse(bad + b"\nm f=1i 5", default_time_ns=0)
    assert reasons(result) == [(1, column, "invalid UTF-8")]
    assert [(k, ts) for k, ts, _ in points(result)] == [("m f", 5)]


def test_comment_lines_may_hold_any_bytes():
    result = parse(b"# \xff\xfe not text \x00\nm f=1i 1", default_time_ns=0)
    assert result.bad_lines == 0 and result.lines == 1 and result.points == 1


def test_missing_timestamp_takes_the_default_time():
    result = parse(b"m a=1i\nm b=2i 5", default_time_ns=1234)
    assert [(k, ts) for k, ts, _ in points(result)] == [("m a", 1234), ("m b", 5)]


@pytest.mark.parametrize("precision, unit", [("ns", 1), ("us", 10**3), ("ms", 10**6), ("s", 10**9)])
def test_missing_timestamp_is_now_truncated_to_the_precision(precision, unit):
    before = time.time_ns()
    result = parse(b"m a=1i", precision=precision)
    after = time.time_ns()
    (_, ts, _), = points(result)
    assert ts % unit == 0
    assert before - before % unit <= ts <= after


@pytest.mark.parametrize("precision, unit", [("ns", 1), ("us", 10**3), ("ms", 10**6), ("s", 10**9)])
def test_timestamps_scale_by_precision(precision, unit):
    result = parse(b"m a=1i 1700000000\nm a=2i -3", precision=precision, default_time_ns=0)
    assert [ts for _, ts, _ in points(result)] == [1700000000 * unit, -3 * unit]


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision must be one of ns, us, ms, s"):
        parse(b"m a=1", precision="h")


def test_good_lines_around_bad_ones_are_kept_and_every_bad_line_counted():
    lines = []
    for k in range(1, 301):
        lines.append(f"m v={k}i {k}" if k % 3 else f"m v={k}x {k}")
    result = parse("\n".join(lines).encode(), default_time_ns=0, max_errors=10)
    assert result.lines == 300
    assert result.bad_lines == 100
    assert result.points == 200
    assert [ts for _, ts, _ in points(result)] == [k for k in range(1, 301) if k % 3]
    assert len(result.errors) == 10  # capped
    assert [e.line for e in result.errors] == [3, 6, 9, 12, 15, 18, 21, 24, 27, 30]
    assert all(e.column == 5 for e in result.errors)


def test_errors_are_gateway_and_value_errors():
    (err,) = parse(b"m a=", default_time_ns=0).errors
    assert isinstance(err, LineProtocolError)
    assert isinstance(err, GatewayError) and isinstance(err, ValueError)
    assert str(err) == "line 1, column 5: missing field value"


def test_max_errors_zero_still_counts():
    result = parse(b"x\ny\nm a=1i", default_time_ns=0, max_errors=0)
    assert result.errors == [] and result.bad_lines == 2 and result.points == 1


def test_parse_appends_to_a_given_batch():
    batch = Batch()
    batch.add("pre", {}, "f", 1.0, 1)
    result = parse(b"m a=2i 2", batch=batch)
    assert result.batch is batch
    assert [k for k, _, _ in batch] == ["pre f", "m a"]
    assert result.points == 1


def test_accepts_str_bytearray_and_memoryview():
    for data in ("m a=1i 1", bytearray(b"m a=1i 1"), memoryview(b"xxm a=1i 1")[2:]):
        assert parse(data, default_time_ns=0).points == 1


def test_many_tags_and_fields_on_one_line():
    tags = ",".join(f"t{k:05d}=v{k}" for k in reversed(range(200)))
    fields = ",".join(f"f{k % 1000}={k}i" for k in range(2000))  # each key twice: later wins
    result = parse(f"m,{tags} {fields} 1".encode(), default_time_ns=0)
    assert result.bad_lines == 0
    got = points(result)
    assert len(got) == 1000
    prefix = "m," + ",".join(f"t{k:05d}=v{k}" for k in range(200))
    assert got[0][0] == prefix + " f0"
    assert {k.rsplit(" ", 1)[1]: v for k, _, v in got} == {f"f{k}": 1000 + k for k in range(1000)}


def test_duplicate_tag_among_many_is_found():
    tags = ",".join(f"t{k}=v" for k in range(100)) + ",t57=w"
    (err,) = parse(f"m,{tags} f=1".encode(), default_time_ns=0).errors
    assert str(err).endswith("duplicate tag key")
    assert err.column == len(f"m,{tags}") - len("t57=w") + 1


def test_bad_line_inside_multiline_string_resumes_at_next_newline():
    # The bad tag ends parsing of line 1 at the first newline, which is inside the string;
    # its rest ('b" 1') is then a bad line of its own. InfluxDB recovers the same way.
    result = parse(b'm,t f="a\nb" 1\nm g=1i 2', default_time_ns=0)
    assert [e.line for e in result.errors] == [1, 2]
    assert [k for k, _, _ in points(result)] == ["m g"]


hostile_alphabet = st.sampled_from(list(b' ,="\\\n\r\t#_-.0123456789eiutfTFmxy\xc3\xa9\xff\x00'))


@settings(max_examples=400, deadline=None)
@given(st.lists(hostile_alphabet, max_size=200).map(bytes))
def test_hostile_input_never_crashes_and_counts_add_up(data):
    result = parse(data, default_time_ns=0, max_errors=5)
    assert result.bad_lines <= result.lines
    assert len(result.errors) == min(result.bad_lines, 5)
    assert result.points == len(result.batch)
    for e in result.errors:
        assert 1 <= e.line <= data.count(b"\n") + 1
        assert e.column >= 1
    for key, _, _ in result.batch:
        assert key and " " in key


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_crash(data):
    result = parse(data, default_time_ns=0)
    assert result.points == len(result.batch)


def test_a_line_whose_keys_would_explode_is_refused():
    # 64 KiB of tags repeated in the key of each of 100 fields would be 6.4 MiB of keys
    tags = "t=" + "v" * 65000
    fields = ",".join(f"f{k}=1i" for k in range(100))
    body = f"m,{tags} {fields} 1\nm,{tags} {','.join(fields.split(',')[:50])} 2\n"
    result = parse(body.encode(), default_time_ns=0)
    assert reasons(result) == [(1, 1, "series keys of the line exceed 4 MiB")]
    assert result.points == 50  # the second line: 50 keys of 65 KB, 3.3 MB, is fine


@settings(max_examples=500, deadline=None)
@given(st.from_regex(r"\A-?([0-9]{1,25}(\.[0-9]{0,25})?|\.[0-9]{1,25})([eE][+-]?[0-9]{1,3})?\Z"))
def test_floats_are_read_with_correct_rounding(text):
    expected = float(text)  # Python's reading is correctly rounded
    result = parse(f"m f={text} 1".encode(), default_time_ns=0)
    if math.isinf(expected):
        assert reasons(result) == [(1, 5, "float out of range")]
    else:
        (_, _, got), = points(result)
        assert struct.pack("<d", got) == struct.pack("<d", expected), text


@settings(max_examples=300, deadline=None)
@given(st.integers(-(2**70), 2**70), st.integers(0, 3))
def test_integers_and_unsigned_within_and_beyond_range(n, zeros):
    digits = str(abs(n)).rjust(len(str(abs(n))) + zeros, "0")
    text = ("-" if n < 0 else "") + digits
    result = parse(f"m i={text}i,u={text}u 1".encode(), default_time_ns=0)
    want_i = -(2**63) <= n < 2**63
    want_u = 0 <= n < 2**64
    if want_i and want_u:
        assert [v for _, _, v in points(result)] == [n, n]
    elif not want_i:
        assert reasons(result) == [(1, 5, "integer out of range")]
    elif n < 0:
        assert reasons(result) == [(1, 9 + len(text), "invalid unsigned integer")]
    else:
        assert reasons(result) == [(1, 9 + len(text), "unsigned integer out of range")]


# ---- backslashes as InfluxDB's parser reads them -----------------------------------------

@pytest.mark.parametrize("line, tag_value", [
    (b"cpu,regions=east\\\\  value=1.0", "east\\ "),
    (b"cpu,host=two\\\\\\ words value=42", "two\\\\ words"),
    (b"cpu,host=a\\b value=1", "a\\b"),
    (b"cpu,host=a\\\\,b value=1", "a\\,b"),
    (b'cpu,host=a\\"b value=1', 'a\\"b'),
])
def test_a_backslash_escapes_only_a_special_character_right_after_it(line, tag_value):
    result = parse(line, default_time_ns=0)
    assert result.errors == []
    [(_, tags, _, _, _)] = result.batch.points()
    assert tags == {"host" if b"host" in line else "regions": tag_value}


def test_a_field_key_escapes_the_double_quote():
    result = parse(b'm a\\"b=1i,c"d=2i', default_time_ns=0)
    assert [f for _, _, f, _, _ in result.batch.points()] == ['a"b', 'c"d']


@pytest.mark.parametrize("args", [
    ("m\\", {}, "f"), ("m", {"t\\": "v"}, "f"), ("m", {"t": "v\\"}, "f"), ("m", {}, "f\\"),
])
def test_a_name_ending_in_a_backslash_is_refused_when_writing(args):
    from gateway.lineprotocol import format_line, series_key
    with pytest.raises(ValueError, match="ends in a backslash"):
        series_key(*args)
    with pytest.raises(ValueError, match="ends in a backslash"):
        format_line(args[0], args[1], {args[2]: 1.0})


def test_serializing_a_series_key_whose_field_ends_in_a_backslash_is_refused():
    from gateway.batch import FLOAT
    from gateway.lineprotocol import serialize_series
    with pytest.raises(ValueError, match="ends in a backslash"):
        serialize_series("m f\\", FLOAT, [1], [1.0])


@pytest.mark.parametrize("precision, default, want", [
    ("s", 1_700_000_000_999_999_999, 1_700_000_000_000_000_000),
    ("ms", 1_234_567, 1_000_000),
    ("us", -1, -1_000),
    ("ns", 5, 5),
])
def test_a_given_default_time_is_truncated_to_the_precision(precision, default, want):
    result = parse(b"m f=1i", precision=precision, default_time_ns=default)
    assert [ts for _, ts, _ in result.batch] == [want]


def test_a_byte_order_mark_at_the_start_is_not_part_of_the_measurement():
    result = parse("\ufeffm f=1i\n\ufeffn f=2i".encode(), default_time_ns=0)
    assert [k for k, _, _ in result.batch] == ["m f", "\ufeffn f"]


def test_a_measurement_starting_with_a_byte_order_mark_is_refused_when_writing():
    from gateway.batch import FLOAT
    from gateway.lineprotocol import format_line, serialize_series, series_key
    with pytest.raises(ValueError, match="U\\+FEFF"):
        series_key("\ufeffm", {}, "f")
    with pytest.raises(ValueError, match="U\\+FEFF"):
        format_line("\ufeffm", {}, {"f": 1.0})
    with pytest.raises(ValueError, match="U\\+FEFF"):
        serialize_series("\ufeffm f", FLOAT, [1], [1.0])


def test_a_series_key_with_a_tag_key_twice_is_not_written():
    """The parser refuses such a line, so the serializer must not write one."""
    from gateway.batch import FLOAT
    from gateway.lineprotocol import serialize_series
    with pytest.raises(ValueError, match="duplicate tag key"):
        serialize_series("weather,site=r,site=a temp", FLOAT, [1], [1.0])
