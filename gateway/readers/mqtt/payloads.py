"""Payload decoding: one MQTT message of a subscription becomes points in a batch.

Three formats (``format`` in a subscription):

- ``line``: InfluxDB line protocol, one or many lines, parsed by :mod:`gateway.lineprotocol`;
- ``json``: an object or an array of objects; nested objects are flattened with a separator;
  every JSON number becomes a float field (so a sensor that sends ``21`` and then ``21.5`` does
  not split into two types), booleans stay booleans, strings are kept only when asked;
- ``value``: a bare number or boolean; measurement and field come from the topic template or
  the subscription.

A bad message raises :class:`BadMessage` with one of :data:`REASONS` and a detail naming where
it went wrong. A bad message adds nothing (JSON, value) or only its good lines (line protocol,
whose partial-write semantics keep every good line).

Points go into a :class:`PointSink`. Line protocol payloads are parsed straight into its batch.
JSON payloads wait in the sink and are converted per group at :meth:`PointSink.seal`: flat
objects by one C call (:mod:`.jsonlines`), the rest by the general decoder here. Bare values
and the general decoder's output become line protocol rows (series key, value, timestamp)
parsed in one C call per batch: escaping and key building per point in Python would cost more
than the MQTT client itself. Every series key is checked by the same C parser once, when
first seen, so a row never fails later.
"""

from __future__ import annotations

import bisect
import json
import math
import re
import time
from decimal import Decimal

from gateway import lineprotocol
from gateway.batch import Batch
from gateway.errors import GatewayError, LineProtocolError
from gateway.lineprotocol import MAX_STRING_BYTES, MAX_TIME_NS, MIN_TIME_NS, format_value, series_key
from gateway.readers.mqtt.config import Subscription
from gateway.readers.mqtt.jsonlines import GENERAL, LINE as LINE_TAKEN, TIME_SCALES, JsonLines
from gateway.readers.mqtt.topics import TopicMismatch
from gateway.rfc3339 import parse_rfc3339

#: Why a message was refused; the status page counts each per topic.
UNPARSEABLE, WRONG_TYPE, TOPIC_MISMATCH, OVERSIZED = ("unparseable", "wrong_type", "topic_mismatch",
                                                      "oversized")
REASONS = (UNPARSEABLE, WRONG_TYPE, TOPIC_MISMATCH, OVERSIZED)
#: A message whose decoding failed because of a bug, not because of its bytes.
INTERNAL_ERROR = "internal_error"
#: Where failures of the rows built from JSON and values are counted (they have no one topic).
ROWS_TOPIC = "(decoded rows)"

#: Series keys remembered per decoder: topics and JSON shapes repeat, escaping is per point.
KEY_CACHE_SIZE = 8192

_NUMBER = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_TRUE = frozenset((b"t", b"T", b"true", b"True", b"TRUE"))
_FALSE = frozenset((b"f", b"F", b"false", b"False", b"FALSE"))
_FIELD, _TIME, _TAG, _MEASUREMENT, _SKIP = range(5)   # roles of JSON keys
_json_decode = json.JSONDecoder().decode


class PointSink:
    """The points of a group of messages, gathered cheaply and parsed in a few C calls.

    ``batch`` takes points parsed per message; ``rows`` holds line protocol rows (JSON and
    bare values); ``timestamped`` holds line protocol payloads whose every line carries its own
    timestamp, per precision: those need no per-message arrival time, so one parse serves the
    whole group and its errors are mapped back to their messages by line number. ``json``
    holds JSON payloads per (decoder, topic match) with their topics and arrival times.
    """

    __slots__ = ("batch", "rows", "timestamped", "json")

    def __init__(self) -> None:
        self.batch = Batch()
        self.rows: list[str] = []
        self.timestamped: dict[str, list[tuple[bytes, str, int]]] = {}
        self.json: dict[tuple, tuple[list[bytes], list[int], list[str]]] = {}

    def seal(self) -> list[tuple[int, str, str, str, bytes]]:
        """Parses what was gathered into the batch. Returns the bad messages found on the way
        as (arrival_ns, topic, reason, detail, payload) in arrival order; their good lines are
        kept."""
        bad = []
        for precision, group in self.timestamped.items():
            bad.extend(_parse_group(group, precision, self.batch))
        self.timestamped = {}
        for (decoder, match), group in self.json.items():   # before rows: it may add some
            bad.extend(decoder.seal_json(match, *group, self))
        self.json = {}
        if self.rows:
            text = "".join(self.rows)
            self.rows = []
            # Rows are built from checked keys and formatted values: an error here is a bug.
            for e in lineprotocol.parse(text, batch=self.batch, default_time_ns=0,
                                        max_errors=10).errors:
                bad.append((0, ROWS_TOPIC, INTERNAL_ERROR, str(e), b""))
        bad.sort(key=_arrival)
        return bad


def _arrival(bad: tuple) -> int:
    return bad[0]


def _parse_group(group: list[tuple[bytes, str, int]], precision: str, batch: Batch) -> list:
    starts, line = [], 1
    for payload, _, _ in group:
        starts.append(line)
        line += payload.count(b"\n") + 1
    text = b"\n".join(payload for payload, _, _ in group)
    result = lineprotocol.parse(text, batch=batch, precision=precision,
                                default_time_ns=time.time_ns(), max_errors=line)
    first: dict[int, tuple[int, LineProtocolError]] = {}
    for e in result.errors:
        i = bisect.bisect_right(starts, e.line) - 1
        count, earliest = first.get(i, (0, e))
        first[i] = (count + 1, earliest)
    bad = []
    for i, (count, e) in sorted(first.items()):
        payload, topic, arrival_ns = group[i]
        reason = str(e).split(": ", 1)[-1]
        bad.append((arrival_ns, topic, UNPARSEABLE, f"{count} bad line(s); first: line {e.line - starts[i] + 1}, "
                                        f"column {e.column}: {reason}", payload))
    return bad


def _timestamped_lines(payload: bytes) -> int:
    """How many data lines the payload has if every one ends in a timestamp, else -1.

    A line without a timestamp ends in its field set, whose last token holds '=' or ends in
    a quote; so a last token of digits is a timestamp (or the line is bad, which the parser
    then reports). Comments and blank lines do not count.
    """
    if b"\n" not in payload:  # the usual single line
        line = payload.strip()
        if not line or line[0] == 35:
            return 0
        last = line.rpartition(b" ")[2]
        return 1 if last.isdigit() or (last[:1] == b"-" and last[1:].isdigit()) else -1
    n = 0
    for line in payload.split(b"\n"):
        line = line.strip()
        if not line or line[0] == 35:  # '#'
            continue
        last = line.rpartition(b" ")[2]
        if not (last.isdigit() or (last[:1] == b"-" and last[1:].isdigit())):
            return -1
        n += 1
    return n


class BadMessage(GatewayError, ValueError):
    """A message that cannot become points: ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail




class Decoder:
    """Decodes the messages of one subscription (its format, template and options)."""

    def __init__(self, sub: Subscription) -> None:
        self.sub = sub
        self.template = sub.parsed_template
        self._keys: dict[tuple, str] = {}
        self._fixed_tags = dict(sub.tags)
        self._decode = {"line": self._decode_line, "json": self._decode_json,
                        "value": self._decode_value}[sub.format]
        j = sub.json
        self._roles: dict[str, int] = {}
        self._series: dict[tuple, dict[str, str]] = {}
        self._time_scale = TIME_SCALES.get(j.time_format)
        self._tag_keys = frozenset(j.tag_keys)
        self._field_keys = frozenset(j.field_keys)
        self._string_fields = frozenset(j.string_fields)
        self._json_lines: dict[object, JsonLines | None] = {}

    def decode(self, topic: str, payload: bytes, arrival_ns: int, sink: PointSink) -> None:
        """Adds the message's points to ``sink``. Raises BadMessage, or, for line protocol
        gathered for one parse, reports it from :meth:`PointSink.seal`."""
        if self.template is not None:
            try:
                match = self.template.match(topic)
            except TopicMismatch as e:
                raise BadMessage(TOPIC_MISMATCH, str(e)) from None
        else:
            match = None
        self._decode(topic, match, payload, arrival_ns, sink)

    # -- helpers ----------------------------------------------------------------------------
    def _tags(self, match) -> dict[str, str]:
        if match is None or not match.tags:
            return self._fixed_tags
        return {**self._fixed_tags, **dict(match.tags)}

    def _key(self, measurement: str, tags: dict[str, str], field: str) -> str:
        """The series key, checked once per distinct series; BadMessage for unusable names."""
        cache_key = (measurement, tuple(tags.items()), field)
        key = self._keys.get(cache_key)
        if key is None:
            key = _remember(self._keys, cache_key, _checked_key(measurement, tags, field))
        return key

    # -- line protocol ----------------------------------------------------------------------
    def _decode_line(self, topic: str, match, payload: bytes, arrival_ns: int,
                     sink: PointSink) -> None:
        extra_tags = self._tags(match)
        if not extra_tags:
            lines = _timestamped_lines(payload)
            if lines > 0:
                sink.timestamped.setdefault(self.sub.precision, []).append((payload, topic, arrival_ns))
                return
            if lines == 0:
                raise BadMessage(UNPARSEABLE, "no line protocol lines in the payload")
        target = sink.batch if not extra_tags else Batch()
        try:
            result = lineprotocol.parse(payload, batch=target, precision=self.sub.precision,
                                        default_time_ns=arrival_ns, max_errors=1)
        except ValueError as e:
            raise BadMessage(UNPARSEABLE, str(e)) from None
        if extra_tags:
            self._retag(target, extra_tags, sink)
        if result.bad_lines:
            first = result.errors[0] if result.errors else None
            detail = f"{result.bad_lines} bad line(s)" + (f"; first: {first}" if first else "")
            raise BadMessage(UNPARSEABLE, detail)
        if result.lines == 0:
            raise BadMessage(UNPARSEABLE, "no line protocol lines in the payload")

    def _retag(self, parsed: Batch, extra_tags: dict[str, str], sink: PointSink) -> None:
        """Copies parsed points into ``sink`` with the subscription's and topic's tags added
        (a tag the line sets itself keeps the line's value)."""
        rows = []
        for measurement, tags, field, ts, value in parsed.points():
            key = self._key(measurement, {**extra_tags, **tags}, field)
            rows.append(f"{key}={format_value(value)} {ts}\n")
        sink.rows.extend(rows)

    # -- bare values ------------------------------------------------------------------------
    def _decode_value(self, topic: str, match, payload: bytes, arrival_ns: int,
                      sink: PointSink) -> None:
        text = payload.strip()
        if _NUMBER.fullmatch(text):
            number = float(text)
            if math.isinf(number):
                raise BadMessage(WRONG_TYPE, f"number {text[:40]!r} is out of range")
            value = repr(number)
        elif text in _TRUE:
            value = "true"
        elif text in _FALSE:
            value = "false"
        else:
            shown = text[:40].decode("utf-8", "replace")
            raise BadMessage(UNPARSEABLE, f"expected a number or a boolean, got {shown!r}")
        measurement = (match and match.measurement) or self.sub.measurement
        field = (match and match.field) or self.sub.field
        key = self._key(measurement, self._tags(match), field)
        sink.rows.append(f"{key}={value} {arrival_ns}\n")

    # -- JSON -------------------------------------------------------------------------------
    def _decode_json(self, topic: str, match, payload: bytes, arrival_ns: int,
                     sink: PointSink) -> None:
        """Keeps the message for :meth:`seal_json`, which decodes a whole group at once."""
        group = sink.json.get((self, match))
        if group is None:
            group = sink.json[(self, match)] = ([], [], [])
        group[0].append(payload)
        group[1].append(arrival_ns)
        group[2].append(topic)

    def seal_json(self, match, payloads: list[bytes], arrivals: list[int], topics: list[str],
                  sink: PointSink) -> list:
        """Decodes a group of JSON messages that share this decoder and topic match into the
        sink; returns the bad ones as (arrival_ns, topic, reason, detail, payload)."""
        general = range(len(payloads))
        converter = self._converter(match)
        if converter is not None:
            text, status = converter.convert(payloads, arrivals)
            taken = [i for i, s in enumerate(status) if s == LINE_TAKEN]
            if taken:
                result = lineprotocol.parse(text, batch=sink.batch, default_time_ns=0,
                                            max_errors=len(taken))
                for e in result.errors:   # refused by the line rules: the general decoder says why
                    status[taken[e.line - 1]] = GENERAL
            general = [i for i, s in enumerate(status) if s != LINE_TAKEN]
        bad = []
        for i in general:
            try:
                self._decode_json_now(topics[i], match, payloads[i], arrivals[i], sink)
            except BadMessage as e:
                bad.append((arrivals[i], topics[i], e.reason, e.detail, payloads[i]))
        return bad

    def _converter(self, match) -> JsonLines | None:
        """The C converter for this match's measurement and tags (None: general path only)."""
        key = None if match is None else (match.measurement, match.tags)
        try:
            return self._json_lines[key]
        except KeyError:
            pass
        try:
            converter = JsonLines(self.sub.json, (match and match.measurement) or self.sub.measurement,
                                  self._tags(match))
        except ValueError:
            converter = None
        return _remember(self._json_lines, key, converter)

    def _decode_json_now(self, topic: str, match, payload: bytes, arrival_ns: int,
                         sink: PointSink) -> None:
        try:
            doc = _json_decode(payload.decode())  # JSON is UTF-8 (RFC 8259)
        except UnicodeDecodeError as e:
            raise BadMessage(UNPARSEABLE, f"payload is not UTF-8 (byte {e.start})") from None
        except (ValueError, RecursionError) as e:
            raise BadMessage(UNPARSEABLE, f"invalid JSON: {e}") from None
        if isinstance(doc, dict):
            objects = (doc,)
        elif isinstance(doc, list) and doc and all(isinstance(o, dict) for o in doc):
            objects = doc
        else:
            raise BadMessage(WRONG_TYPE, "expected a JSON object or a non-empty array of objects, "
                                         f"got {_json_kind(doc)}")
        base_tags = self._tags(match)
        default_measurement = (match and match.measurement) or self.sub.measurement
        rows = []
        for i, obj in enumerate(objects):
            where = f"object {i + 1}: " if len(objects) > 1 else ""
            rows.extend(self._json_object(obj, where, base_tags, default_measurement, arrival_ns))
        # Every object is checked before the first row goes in: a bad message adds nothing.
        sink.rows.extend(rows)

    def _role(self, key: str) -> int:
        """What a (flattened) JSON key is for, decided once per key name."""
        opts = self.sub.json
        if key == opts.time_key:
            role = _TIME
        elif key == opts.measurement_key:
            role = _MEASUREMENT
        elif key in self._tag_keys:
            role = _TAG
        elif key.startswith("_"):
            role = _SKIP  # reserved by the data model; the configured key lists cannot name them
        elif self._field_keys and key not in self._field_keys and key not in self._string_fields:
            role = _SKIP
        else:
            role = _FIELD
        return _remember(self._roles, key, role)

    def _json_object(self, obj: dict, where: str, base_tags: dict[str, str],
                     measurement: str, arrival_ns: int) -> list:
        rows = self._json_rows(obj, obj.items(), where, base_tags, measurement, arrival_ns)
        if rows is None:  # nested objects or arrays: flatten first (the uncommon shape)
            flat: dict[str, object] = {}
            _flatten(obj, "", self.sub.json.separator, flat)
            rows = self._json_rows(obj, flat.items(), where, base_tags, measurement, arrival_ns)
        return rows

    def _json_rows(self, obj, items, where: str, base_tags: dict[str, str], measurement: str,
                   arrival_ns: int) -> list | None:
        """The object's rows, or None when it holds a nested object or array."""
        ts = arrival_ns
        tags = base_tags
        fields: list[tuple[str, str]] = []
        roles = self._roles
        for key, value in items:
            kind = type(value)
            if kind is dict or kind is list:
                return None
            role = roles.get(key)
            if role is None:
                role = self._role(key)
            if role == _FIELD:
                if kind is float or kind is int:
                    try:
                        number = float(value)
                    except OverflowError:
                        number = math.inf
                    if number - number != 0.0:  # inf or nan
                        raise BadMessage(WRONG_TYPE, f"{where}field {key!r} is out of range")
                    fields.append((key, repr(number)))
                elif kind is bool:
                    fields.append((key, "true" if value else "false"))
                elif kind is str:
                    if key in self._string_fields:
                        if len(value) > MAX_STRING_BYTES // 4 and len(value.encode()) > MAX_STRING_BYTES:
                            raise BadMessage(WRONG_TYPE, f"{where}string field {key!r} is longer "
                                                         f"than {MAX_STRING_BYTES} bytes")
                        fields.append((key, format_value(value)))
                    elif key in self._field_keys:
                        raise BadMessage(WRONG_TYPE, f"{where}field {key!r} is a string; list it in "
                                                     "json.string_fields to keep it")
                elif value is not None and (key in self._field_keys or key in self._string_fields):
                    raise BadMessage(WRONG_TYPE, f"{where}field {key!r} is {_json_kind(value)}")
            elif role == _TIME:
                if kind is int and self._time_scale:
                    ts = value * self._time_scale
                    if not MIN_TIME_NS <= ts <= MAX_TIME_NS:
                        ts = self._json_time(value, where)   # raises, naming the key
                else:
                    ts = self._json_time(value, where)
            elif role == _TAG:
                if value is not None:
                    if tags is base_tags:
                        tags = dict(base_tags)
                    tags[key] = value if kind is str else json.dumps(value)
            elif role == _MEASUREMENT:
                if kind is not str or not value:
                    raise BadMessage(WRONG_TYPE, f"{where}measurement key {key!r} must be a "
                                                 f"non-empty string, got {_json_kind(value)}")
                measurement = value
        if not fields:
            raise BadMessage(WRONG_TYPE, f"{where}no number, boolean or kept string fields")
        if not measurement:
            raise BadMessage(WRONG_TYPE, f"{where}no measurement (json.measurement_key "
                                         f"{self.sub.json.measurement_key!r} is missing)")
        series = self._series_of(measurement, tags)
        suffix = f" {ts}\n"
        rows = []
        for field, value in fields:
            key = series.get(field)
            if key is None:
                key = series[field] = self._key(measurement, tags, field)
            rows.append(key + "=" + value + suffix)
        return rows

    def _series_of(self, measurement: str, tags: dict[str, str]) -> dict[str, str]:
        """field -> series key, for one measurement and tag set (cached: shapes repeat)."""
        prefix = (measurement, tuple(tags.items()))
        series = self._series.get(prefix)
        if series is None:
            series = _remember(self._series, prefix, {})
        return series

    def _json_time(self, value, where: str) -> int:
        fmt = self.sub.json.time_format
        key = self.sub.json.time_key
        if fmt == "rfc3339":
            if not isinstance(value, str):
                raise BadMessage(WRONG_TYPE, f"{where}time {key!r} must be an RFC 3339 string, "
                                             f"got {_json_kind(value)}")
            try:
                ns = parse_rfc3339(value)
            except ValueError as e:
                raise BadMessage(WRONG_TYPE, f"{where}time {key!r}: {e}") from None
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise BadMessage(WRONG_TYPE, f"{where}time {key!r} must be a number ({fmt}), "
                                             f"got {_json_kind(value)}")
            scale = TIME_SCALES[fmt]
            if isinstance(value, int):
                ns = value * scale
            elif math.isfinite(value) and abs(value) < 1e300:
                # The shortest repr is the decimal the sender wrote: scale it exactly.
                ns = int((Decimal(repr(value)) * scale).to_integral_value())
            else:
                ns = MAX_TIME_NS + 1
        if not MIN_TIME_NS <= ns <= MAX_TIME_NS:
            raise BadMessage(WRONG_TYPE, f"{where}time {key!r} = {value!r} is out of range")
        return ns


def _remember(cache: dict, key, value):
    """Stores value under key in a bounded cache (emptied when full: what repeats comes back
    at once) and returns it."""
    if len(cache) >= KEY_CACHE_SIZE:
        cache.clear()
    cache[key] = value
    return value


def _checked_key(measurement: str, tags: dict[str, str], field: str) -> str:
    """The escaped series key, checked by the C parser's rules (reserved names, control
    characters, UTF-8, length); BadMessage(WRONG_TYPE) naming the problem otherwise."""
    try:
        key = series_key(measurement, tags, field)
        lineprotocol.check_series_key(key.encode())
    except ValueError as e:
        raise BadMessage(WRONG_TYPE, str(e)[:300]) from None
    return key


def _flatten(obj: dict, prefix: str, sep: str, out: dict) -> None:
    for k, v in obj.items():
        key = f"{prefix}{sep}{k}" if prefix else k
        if isinstance(v, dict):
            _flatten(v, key, sep, out)
        elif isinstance(v, list):
            _flatten({str(i): item for i, item in enumerate(v)}, key, sep, out)
        else:
            out[key] = v


def _json_kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an empty array" if not value else "an array"
    return "an object"
