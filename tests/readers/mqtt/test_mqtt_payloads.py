"""Payload decoding: every format, every option, every way a payload can be bad."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from gateway.config import Loader
from gateway.readers.mqtt.config import Subscription
from gateway.readers.mqtt.payloads import (TOPIC_MISMATCH, UNPARSEABLE, WRONG_TYPE,
                                           BadMessage, PointSink, decoder_for)
from gateway.rfc3339 import parse_rfc3339

ARRIVAL = 1_700_000_000_000_000_123


def subscription(**raw) -> Subscription:
    loader = Loader()
    sub = loader.load(Subscription, raw, "sub")
    assert not loader.problems, loader.problems
    return sub


def decode(sub: Subscription, topic: str, payload: bytes | str, arrival: int = ARRIVAL):
    sink = PointSink()
    if isinstance(payload, str):
        payload = payload.encode()
    decoder_for(sub).decode(topic, payload, arrival, sink)
    assert sink.seal() == []
    return sorted(sink.batch)


def bad(sub: Subscription, topic: str, payload: bytes | str, sink: PointSink | None = None) -> BadMessage:
    """The message's BadMessage, raised at once or reported when its group is parsed."""
    sink = sink if sink is not None else PointSink()
    if isinstance(payload, str):
        payload = payload.encode()
    try:
        decoder_for(sub).decode(topic, payload, ARRIVAL, sink)
    except BadMessage as e:
        assert sink.seal() == []
        return e
    reported = sink.seal()
    assert [(t, p) for _, t, _, _, p in reported] == [(topic, payload)]
    return BadMessage(reported[0][2], reported[0][3])


# -- line protocol ---------------------------------------------------------------------------

def test_line_protocol_many_lines_and_arrival_time():
    sub = subscription(topic="t/#", format="line")
    got = decode(sub, "t/x", "a v=1\n# comment\n\nb,k=v w=2i 5\n")
    assert got == [("a v", ARRIVAL, 1.0), ("b,k=v w", 5, 2)]


def test_line_protocol_precision():
    sub = subscription(topic="t", format="line", precision="ms")
    assert decode(sub, "t", "a v=1 1500") == [("a v", 1_500_000_000, 1.0)]


def test_line_protocol_bad_line_keeps_the_good_ones():
    sub = subscription(topic="t", format="line")
    for payload in (b"a v=1 1\nbroken 5\nb v=2 2", b"a v=1 1\nbroken\nb v=2 2"):
        sink = PointSink()
        e = bad(sub, "t", payload, sink)
        assert e.reason == UNPARSEABLE
        assert "line 2" in e.detail
        assert sorted(sink.batch) == [("a v", 1, 1.0), ("b v", 2, 2.0)]


def test_timestamped_line_protocol_of_many_messages_parses_once_and_blames_the_right_one():
    sub = subscription(topic="t/+", format="line")
    decoder = decoder_for(sub)
    sink = PointSink()
    payloads = [b"a v=1 1", b"b v=2 2\nb v=3 3\n", b"c v=oops 4", b"# note\nd v=4 5\nd v=x 6", b"e v=5 7"]
    for i, p in enumerate(payloads):
        decoder.decode(f"t/{i}", p, ARRIVAL, sink)
    assert len(sink.batch) == 0                 # gathered, not parsed yet
    reported = sink.seal()
    assert [(t, r) for _, t, r, _, _ in reported] == [("t/2", UNPARSEABLE), ("t/3", UNPARSEABLE)]
    assert "line 1, column 5" in reported[0][3] and "line 3" in reported[1][3]
    assert sorted(sink.batch) == [("a v", 1, 1.0), ("b v", 2, 2.0), ("b v", 3, 3.0),
                                  ("d v", 5, 4.0), ("e v", 7, 5.0)]


@pytest.mark.parametrize("payload", ["", "\n\n", "# only a comment", "nonsense", "m f=\"open 1"])
def test_line_protocol_unparseable(payload):
    sub = subscription(topic="t", format="line")
    assert bad(sub, "t", payload).reason == UNPARSEABLE


def test_line_protocol_template_tags_do_not_override_the_line():
    sub = subscription(topic="g/+/m", format="line", template="g/{site}/+", tags={"k": "fixed"})
    assert decode(sub, "g/north/m", "a,site=own v=1 7") == [("a,k=fixed,site=own v", 7, 1.0)]
    assert decode(sub, "g/north/m", "a v=1 7") == [("a,k=fixed,site=north v", 7, 1.0)]


# -- bare values ------------------------------------------------------------------------------

@pytest.mark.parametrize("payload,value", [
    ("21.5", 21.5), (" -3 ", -3.0), ("1e3", 1000.0), (".5", 0.5), ("true", True), ("F", False),
    ("TRUE", True), ("False", False)])
def test_value_payloads(payload, value):
    sub = subscription(topic="s/+/+", format="value", template="s/{device}/{_field}",
                       measurement="m")
    got = decode(sub, "s/d1/temp", payload)
    assert got == [("m,device=d1 temp", ARRIVAL, value)]
    assert type(got[0][2]) is type(value)


@pytest.mark.parametrize("payload", ["", "abc", "1,5", "nan", "inf", "0x10", "yes", "1 2", "\xff"])
def test_value_unparseable(payload):
    sub = subscription(topic="s", format="value", measurement="m")
    assert bad(sub, "s", payload).reason == UNPARSEABLE


def test_value_out_of_range_is_wrong_type():
    sub = subscription(topic="s", format="value", measurement="m")
    assert bad(sub, "s", "1e999").reason == WRONG_TYPE


def test_value_measurement_and_field_from_topic():
    sub = subscription(topic="h/#", format="value", template="h/{room}/{_measurement}/#")
    assert decode(sub, "h/hall/door/contact", "1") == [("door,room=hall value", ARRIVAL, 1.0)]


# -- topic templates --------------------------------------------------------------------------

@pytest.mark.parametrize("topic", ["s/d1", "s/d1/t/extra", "x/d1/t", "s//t"])
def test_topic_not_matching_template(topic):
    sub = subscription(topic="#", format="value", template="s/{device}/{_field}", measurement="m")
    e = bad(sub, topic, "1")
    assert e.reason == TOPIC_MISMATCH
    assert "level" in e.detail


def test_template_plus_skips_a_level_and_rest_accepts_more():
    sub = subscription(topic="a/#", format="value", template="a/+/{dev}/#", measurement="m")
    assert decode(sub, "a/zzz/d9/x/y", "2") == [("m,dev=d9 value", ARRIVAL, 2.0)]
    assert bad(sub, "a/zzz", "2").reason == TOPIC_MISMATCH


def test_topic_level_with_reserved_characters_is_escaped():
    sub = subscription(topic="s/+", format="value", template="s/{device}", measurement="m")
    assert decode(sub, "s/a b,c=d", "1") == [("m,device=a\\ b\\,c\\=d value", ARRIVAL, 1.0)]


# -- JSON -------------------------------------------------------------------------------------

def test_json_flat_object_with_tags_and_time():
    sub = subscription(topic="d/+", format="json", measurement="env", template="d/{device}",
                       json={"time_key": "ts", "time_format": "unix_ms", "tag_keys": ["room"]})
    got = decode(sub, "d/7", json.dumps({"ts": 1500, "room": "a", "t": 1, "on": True, "s": "x"}))
    assert got == [("env,device=7,room=a on", 1_500_000_000, True),
                   ("env,device=7,room=a t", 1_500_000_000, 1.0)]


def test_json_without_time_key_uses_arrival_time():
    sub = subscription(topic="d", format="json", measurement="env", json={"time_key": "ts"})
    assert decode(sub, "d", '{"t": 2}') == [("env t", ARRIVAL, 2.0)]


def test_json_nested_separator_and_arrays():
    sub = subscription(topic="d", format="json", measurement="m", json={"separator": "/"})
    got = decode(sub, "d", '{"a": {"b": {"c": 1}}, "l": [5, {"x": 6}], "n": null}')
    assert got == [("m a/b/c", ARRIVAL, 1.0), ("m l/0", ARRIVAL, 5.0), ("m l/1/x", ARRIVAL, 6.0)]


def test_json_array_of_objects():
    sub = subscription(topic="d", format="json", measurement="m",
                       json={"tag_keys": ["id"], "time_key": "t", "time_format": "unix"})
    got = decode(sub, "d", '[{"id": "a", "t": 1, "v": 1}, {"id": "b", "t": 2.25, "v": 2}]')
    assert got == [("m,id=a v", 1_000_000_000, 1.0), ("m,id=b v", 2_250_000_000, 2.0)]


def test_json_field_keys_and_string_fields():
    sub = subscription(topic="d", format="json", measurement="m",
                       json={"field_keys": ["a", "s"], "string_fields": ["s", "note"]})
    got = decode(sub, "d", '{"a": 1, "b": 2, "s": "on", "note": "hi", "other": "dropped"}')
    assert got == [("m a", ARRIVAL, 1.0), ("m note", ARRIVAL, "hi"), ("m s", ARRIVAL, "on")]


@pytest.mark.parametrize("fmt,value,ns", [
    ("unix", 1.5, 1_500_000_000), ("unix_ms", 1500, 1_500_000_000),
    ("unix_us", 1500, 1_500_000), ("unix_ns", 1500, 1500),
    ("rfc3339", "1970-01-01T00:00:01.5Z", 1_500_000_000),
    ("rfc3339", "2024-05-01T12:00:00.000000001+02:00", 1_714_557_600_000_000_001),
    ("rfc3339", "2024-05-01 12:00:00-01:30", 1_714_570_200_000_000_000)])
def test_json_time_formats(fmt, value, ns):
    sub = subscription(topic="d", format="json", measurement="m",
                       json={"time_key": "t", "time_format": fmt})
    assert decode(sub, "d", json.dumps({"t": value, "v": 1})) == [("m v", ns, 1.0)]


def test_json_measurement_key():
    sub = subscription(topic="d", format="json", json={"measurement_key": "kind"})
    assert decode(sub, "d", '{"kind": "pump", "v": 1}') == [("pump v", ARRIVAL, 1.0)]
    assert bad(sub, "d", '{"v": 1}').reason == WRONG_TYPE
    assert bad(sub, "d", '{"kind": 3, "v": 1}').reason == WRONG_TYPE


@pytest.mark.parametrize("payload", ["{", "not json", "{'a': 1}", "", "\xff\xfe"])
def test_json_unparseable(payload):
    sub = subscription(topic="d", format="json", measurement="m")
    assert bad(sub, "d", payload).reason == UNPARSEABLE


@pytest.mark.parametrize("payload,options", [
    ("5", {}), ('"text"', {}), ("[]", {}), ("[1, 2]", {}), ('[{"v": 1}, 3]', {}),
    ('{"s": "only strings"}', {}), ("{}", {}),
    ('{"v": 1, "t": "noon"}', {"time_key": "t"}),
    ('{"v": 1, "t": 12}', {"time_key": "t", "time_format": "rfc3339"}),
    ('{"v": 1, "t": "2024-13-01T00:00:00Z"}', {"time_key": "t", "time_format": "rfc3339"}),
    ('{"v": 1, "t": 1e300}', {"time_key": "t"}),
    ('{"v": 1, "t": true}', {"time_key": "t"}),
    ('{"v": "high"}', {"field_keys": ["v"]}),
    ('{"v": [1, 2]}', {"string_fields": ["v"], "field_keys": ["v"]}),
    ('{"v": 1e999}', {}),
])
def test_json_wrong_types(payload, options):
    sub = subscription(topic="d", format="json", measurement="m", json=options)
    e = bad(sub, "d", payload)
    assert e.reason == WRONG_TYPE, e.detail


def test_json_bad_second_object_adds_nothing():
    sub = subscription(topic="d", format="json", measurement="m")
    sink = PointSink()
    e = bad(sub, "d", '[{"v": 1}, {"v": "x"}]', sink)
    assert e.reason == WRONG_TYPE and len(sink.batch) == 0
    assert "object 2" in e.detail


def test_json_reserved_keys_are_skipped():
    sub = subscription(topic="d", format="json", measurement="m")
    assert decode(sub, "d", '{"_id": 5, "v": 1}') == [("m v", ARRIVAL, 1.0)]


def test_decoder_never_raises_anything_but_bad_message_for_arbitrary_bytes():
    subs = [subscription(topic="d", format=f, measurement="m") for f in ("line", "json", "value")]

    @settings(derandomize=True, max_examples=300)
    @given(st.binary(max_size=200))
    def check(payload):
        for sub in subs:
            sink = PointSink()
            try:
                decoder_for(sub).decode("d", payload, ARRIVAL, sink)
            except BadMessage as e:
                assert e.reason in (UNPARSEABLE, WRONG_TYPE)
            for _, topic, reason, _, _ in sink.seal():   # JSON is decoded when its group is sealed
                assert (topic, reason in (UNPARSEABLE, WRONG_TYPE)) == ("d", True)
    check()


@settings(derandomize=True)
@given(st.integers(min_value=0, max_value=253402300799), st.integers(0, 999_999_999))
def test_rfc3339_matches_datetime(seconds, nanos):
    from datetime import datetime, timezone
    text = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    assert parse_rfc3339(f"{text}.{nanos:09d}Z") == seconds * 1_000_000_000 + nanos


_names = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=8).filter(
    lambda s: not s.startswith(("_", "#", "\ufeff")) and not s.endswith("\\"))  # not writable
_values = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
                    st.integers(-(2**63), 2**63 - 1), st.text(max_size=10))


@settings(derandomize=True, max_examples=300)
@given(st.lists(st.tuples(_names, st.dictionaries(_names, _names, max_size=2),
                          st.dictionaries(_names, _values, min_size=1, max_size=3),
                          st.one_of(st.none(), st.integers(-(2**62), 2**62))),
                min_size=1, max_size=4))
def test_lines_judged_timestamped_never_take_the_default_time(lines):
    """The grouping shortcut: a payload judged "every line has a timestamp" parses the same
    whatever default time is given, so one parse can serve many messages."""
    from gateway import lineprotocol
    from gateway.readers.mqtt.payloads.line import timestamped_lines

    payload = "\n".join(lineprotocol.format_line(m, t, f, ts) for m, t, f, ts in lines).encode()
    judged = timestamped_lines(payload)
    all_timed = all(ts is not None for *_, ts in lines)
    if judged > 0:  # the shortcut is taken only when it is safe
        assert all_timed
        a = lineprotocol.parse(payload, default_time_ns=1)
        b = lineprotocol.parse(payload, default_time_ns=2)
        assert not a.errors and sorted(a.batch, key=repr) == sorted(b.batch, key=repr)
    elif all_timed and not any(isinstance(v, str) and "\n" in v
                               for _, _, fields, _ in lines for v in fields.values()):
        raise AssertionError("timestamped lines without newlines in strings should be grouped")
    else:
        assert judged == -1
