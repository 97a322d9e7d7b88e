"""The C path for flat JSON objects gives exactly what the general decoder gives.

Every message is decoded twice, once as the reader does (flat objects through
native/src/jsonlines.c, the rest through the general decoder) and once with the C path turned
off; points, bad messages and their reasons must be the same.
"""

from __future__ import annotations

import json

from hypothesis import assume, given, settings, strategies as st

from gateway.config import Loader
from gateway.readers.mqtt.config import Subscription
from gateway.readers.mqtt.jsonlines import GENERAL, LINE, JsonLines
from gateway.readers.mqtt.payloads import PointSink, decoder_for

ARRIVAL = 1_700_000_000_000_000_123

# Keys that meet every role and every escaping rule, and some that only the general path takes.
KEYS = ["ts", "t", "kind", "room", "dev", "v", "temp", "_id", "on", "note", "a b", "x,y", "k=v",
        "température", "#h", "", "ü", "a\\b", "tab\t", "del\x7f", "c1\x85"]
TEXT = st.sampled_from(["", "a", "hall", "a b", "x,y=z", "#1", "_r", "ü", "q\"q", "\\", "\n", "x" * 3])
VALUES = st.one_of(
    st.integers(-10**20, 10**20), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([True, False, None, 1e308, -0.0, 0]), TEXT,
    st.sampled_from([[1], {"n": 1}, []]))
# Sensor-like objects, which the C path mostly takes, and wild ones, which it mostly leaves.
TAME = st.dictionaries(
    st.sampled_from(KEYS[:14]),
    st.one_of(st.integers(-10**12, 10**13), st.floats(allow_nan=False, allow_infinity=False),
              st.booleans(), st.none(),
              st.sampled_from(["a", "hall", "a b", "x,y=z", "_r", "#1", "", "°C", "Küche", "日本"])),
    max_size=6)
OBJECTS = st.one_of(TAME, st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=8))


def subscription(**raw) -> Subscription:
    loader = Loader()
    sub = loader.load(Subscription, raw, "sub")
    assert not loader.problems, loader.problems
    return sub


OPTIONS = st.fixed_dictionaries({}, optional={
    "time_key": st.sampled_from(["ts", "t"]),
    "time_format": st.sampled_from(["unix", "unix_ms", "unix_us", "unix_ns", "rfc3339"]),
    "tag_keys": st.lists(st.sampled_from(["room", "dev", "kind", "a b", "x,y"]), unique=True, max_size=3),
    "field_keys": st.lists(st.sampled_from(["v", "temp", "on", "note"]), unique=True, max_size=3),
    "string_fields": st.lists(st.sampled_from(["note", "kind", "room"]), unique=True, max_size=2),
    "measurement_key": st.sampled_from(["kind", "room"]),
})


def _decode_all(sub: Subscription, messages, fast: bool):
    decoder = decoder_for(sub)
    if not fast:
        decoder._converter = lambda match: None
    sink = PointSink()
    for topic, payload in messages:
        decoder.decode(topic, payload, ARRIVAL, sink)
    bad = sink.seal()
    return sorted(sink.batch), bad


@settings(derandomize=True, max_examples=400, deadline=None)
@given(OPTIONS, st.sampled_from(["", "env", "a b"]), st.sampled_from(["", "d/{dev}", "d/{_measurement}"]),
       st.lists(st.tuples(st.sampled_from(["d/1", "d/x y"]), OBJECTS,
                          st.sampled_from(["plain", "spaced", "raw"])), min_size=1, max_size=6))
def test_c_path_matches_general_decoder(options, measurement, template, messages):
    raw = {"topic": "d/+", "format": "json", "json": options, "tags": {"site": "s1"}}
    if measurement:
        raw["measurement"] = measurement
    if template:
        raw["template"] = template
    assume(measurement or "measurement_key" in options or "_measurement" in template)
    sub = subscription(**raw)
    encoded = []
    for topic, obj, style in messages:
        if style == "raw":   # no escapes, as small sensors write it
            text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
        else:
            text = json.dumps(obj, indent=1 if style == "spaced" else None)
        encoded.append((topic, text.encode()))
    assert _decode_all(sub, encoded, fast=True) == _decode_all(sub, encoded, fast=False)


def test_common_shapes_take_the_c_path():
    sub = subscription(topic="d/+", format="json", measurement="env",
                       json={"time_key": "ts", "time_format": "unix_ms", "tag_keys": ["dev"],
                             "string_fields": ["state"]})
    converter = JsonLines(sub.json, "env", {"site": "s 1"})
    payloads = [b'{"ts": 1500, "dev": "d,1", "t": 21.5, "on": true, "state": "ok", "n": null}',
                b' {\n"t": -1e-3 }\n',
                '{"temp\u00e9rature": 2, "unit": "\u00b0C"}'.encode(),   # UTF-8 as is
                b'{"t": 1, "u": "\xff"}',           # invalid UTF-8
                b'{"t": 1, "u": "\xed\xa0\x80"}',   # a UTF-16 surrogate in UTF-8 form
                b'{"t": 1, "t": 2}',            # a key twice
                b'{"a": {"b": 1}}',             # nested
                b'{"t": "\\u00b0C"}',           # an escape
                b'[{"t": 1}]']                  # an array
    text, status = converter.convert(payloads, [7] * len(payloads))
    assert list(status) == [LINE, LINE, LINE, GENERAL, GENERAL, GENERAL, GENERAL, GENERAL, GENERAL]
    assert bytes(text) == (b'env,site=s\\ 1,dev=d\\,1 t=21.5,on=true,state="ok" 1500000000\n'
                           b'env,site=s\\ 1 t=-1e-3 7\n'
                           + 'env,site=s\\ 1 temp\u00e9rature=2 7\n'.encode())
