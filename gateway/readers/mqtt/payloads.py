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
JSON and bare values become line protocol rows (series key, value, timestamp) that
:meth:`PointSink.seal` parses in one C call per batch: escaping and key building per point in
Python would cost more than the MQTT client itself. Every series key is checked by the same C
parser once, when first seen, so a row never fails later.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone
from decimal import Decimal

from gateway import lineprotocol
from gateway.batch import Batch
from gateway.errors import LineProtocolError
from gateway.lineprotocol import MAX_STRING_BYTES, MAX_TIME_NS, MIN_TIME_NS, format_value, series_key
from gateway.readers.mqtt.config import Subscription
from gateway.readers.mqtt.topics import TopicMismatch

#: Why a message was refused; the status page counts each per topic.
UNPARSEABLE, WRONG_TYPE, TOPIC_MISMATCH, OVERSIZED = ("unparseable", "wrong_type", "topic_mismatch",
                                                      "oversized")
REASONS = (UNPARSEABLE, WRONG_TYPE, TOPIC_MISMATCH, OVERSIZED)

#: Series keys remembered per decoder: topics and JSON shapes repeat, escaping is per point.
KEY_CACHE_SIZE = 8192

_NUMBER = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_TRUE = frozenset((b"t", b"T", b"true", b"True", b"TRUE"))
_FALSE = frozenset((b"f", b"F", b"false", b"False", b"FALSE"))
_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
                      r"(?:([Zz])|([+-])(\d{2}):(\d{2}))")
_UNIX_SCALE = {"unix": 1_000_000_000, "unix_ms": 1_000_000, "unix_us": 1_000, "unix_ns": 1}


class PointSink:
    """The points of a group of messages: a batch, plus rows still to be parsed into it."""

    __slots__ = ("batch", "rows")

    def __init__(self) -> None:
        self.batch = Batch()
        self.rows: list[str] = []

    def seal(self) -> list[LineProtocolError]:
        """Parses the pending rows into the batch; returns the errors (none unless a bug)."""
        if not self.rows:
            return []
        text = "".join(self.rows)
        self.rows = []
        return lineprotocol.parse(text, batch=self.batch, default_time_ns=0, max_errors=10).errors

    def __len__(self) -> int:
        return len(self.batch) + len(self.rows)


class BadMessage(ValueError):
    """A message that cannot become points: ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str, points: int = 0) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        #: Points the message still contributed (the good lines of a line protocol payload).
        self.points = points


def parse_rfc3339(text: str) -> int:
    """Nanoseconds since the epoch; ValueError for anything that is not RFC 3339."""
    m = _RFC3339.fullmatch(text)
    if not m:
        raise ValueError(f"{text!r} is not an RFC 3339 time such as 2024-05-01T12:00:00Z")
    y, mo, d, h, mi, s = (int(m.group(i)) for i in range(1, 7))
    try:
        base = datetime(y, mo, d, h, mi, min(s, 59), tzinfo=timezone.utc)
    except ValueError as e:
        raise ValueError(f"{text!r}: {e}") from None
    seconds = (base - datetime(1970, 1, 1, tzinfo=timezone.utc)) // _SECOND + (s - min(s, 59))
    frac = m.group(7) or ""
    ns = seconds * 1_000_000_000 + int(frac.ljust(9, "0") or 0)
    if m.group(9):
        offset = (int(m.group(10)) * 60 + int(m.group(11))) * 60_000_000_000
        ns -= offset if m.group(9) == "+" else -offset
    return ns


_SECOND = datetime(1970, 1, 1, 0, 0, 1) - datetime(1970, 1, 1)


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
        self._tag_keys = frozenset(j.tag_keys)
        self._field_keys = frozenset(j.field_keys)
        self._string_fields = frozenset(j.string_fields)

    def decode(self, topic: str, payload: bytes, arrival_ns: int, sink: PointSink) -> int:
        """Adds the message's points to ``sink``; returns how many. Raises BadMessage."""
        if self.template is not None:
            try:
                match = self.template.match(topic)
            except TopicMismatch as e:
                raise BadMessage(TOPIC_MISMATCH, str(e)) from None
        else:
            match = None
        return self._decode(match, payload, arrival_ns, sink)

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
            key = _checked_key(measurement, tags, field)
            if len(self._keys) >= KEY_CACHE_SIZE:
                self._keys.clear()
            self._keys[cache_key] = key
        return key

    # -- line protocol ----------------------------------------------------------------------
    def _decode_line(self, match, payload: bytes, arrival_ns: int, sink: PointSink) -> int:
        extra_tags = self._tags(match)
        target = sink.batch if not extra_tags else Batch()
        try:
            result = lineprotocol.parse(payload, batch=target, precision=self.sub.precision,
                                        default_time_ns=arrival_ns, max_errors=1)
        except ValueError as e:
            raise BadMessage(UNPARSEABLE, str(e)) from None
        points = result.points
        if extra_tags:
            points = self._retag(target, extra_tags, sink)
        if result.bad_lines:
            first = result.errors[0] if result.errors else None
            detail = f"{result.bad_lines} bad line(s)" + (f"; first: {first}" if first else "")
            raise BadMessage(UNPARSEABLE, detail, points)
        if result.lines == 0:
            raise BadMessage(UNPARSEABLE, "no line protocol lines in the payload")
        return points

    def _retag(self, parsed: Batch, extra_tags: dict[str, str], sink: PointSink) -> int:
        """Copies parsed points into ``sink`` with the subscription's and topic's tags added
        (a tag the line sets itself keeps the line's value)."""
        rows = []
        for measurement, tags, field, ts, value in parsed.points():
            key = self._key(measurement, {**extra_tags, **tags}, field)
            rows.append(f"{key}={format_value(value)} {ts}\n")
        sink.rows.extend(rows)
        return len(rows)

    # -- bare values ------------------------------------------------------------------------
    def _decode_value(self, match, payload: bytes, arrival_ns: int, sink: PointSink) -> int:
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
        return 1

    # -- JSON -------------------------------------------------------------------------------
    def _decode_json(self, match, payload: bytes, arrival_ns: int, sink: PointSink) -> int:
        try:
            doc = json.loads(payload)
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
        return len(rows)

    def _json_object(self, obj: dict, where: str, base_tags: dict[str, str],
                     measurement: str, arrival_ns: int) -> list:
        opts = self.sub.json
        flat: dict[str, object] = {}
        _flatten(obj, "", opts.separator, flat)
        ts = arrival_ns
        tags = dict(base_tags)
        fields: list[tuple[str, object]] = []
        for key, value in flat.items():
            if key == opts.time_key:
                ts = self._json_time(value, where)
            elif key == opts.measurement_key:
                if not isinstance(value, str) or not value:
                    raise BadMessage(WRONG_TYPE, f"{where}measurement key {key!r} must be a "
                                                 f"non-empty string, got {_json_kind(value)}")
                measurement = value
            elif key in self._tag_keys:
                if value is None:
                    continue
                tags[key] = value if isinstance(value, str) else json.dumps(value)
            elif self._field_keys and key not in self._field_keys and key not in self._string_fields:
                continue
            elif isinstance(value, bool):
                fields.append((key, "true" if value else "false"))
            elif isinstance(value, (int, float)):
                try:
                    number = float(value)
                except OverflowError:
                    number = math.inf
                if not math.isfinite(number):
                    raise BadMessage(WRONG_TYPE, f"{where}field {key!r} is out of range")
                fields.append((key, repr(number)))
            elif isinstance(value, str):
                if key in self._string_fields:
                    if len(value) > MAX_STRING_BYTES // 4 and len(value.encode()) > MAX_STRING_BYTES:
                        raise BadMessage(WRONG_TYPE, f"{where}string field {key!r} is longer than "
                                                     f"{MAX_STRING_BYTES} bytes")
                    fields.append((key, format_value(value)))
                elif key in self._field_keys:
                    raise BadMessage(WRONG_TYPE, f"{where}field {key!r} is a string; list it in "
                                                 "json.string_fields to keep it")
            elif value is None:
                continue
            elif key in self._field_keys or key in self._string_fields:
                raise BadMessage(WRONG_TYPE, f"{where}field {key!r} is {_json_kind(value)}")
        if not fields:
            raise BadMessage(WRONG_TYPE, f"{where}no number, boolean or kept string fields")
        if not measurement:
            raise BadMessage(WRONG_TYPE, f"{where}no measurement (json.measurement_key "
                                         f"{opts.measurement_key!r} is missing)")
        rows = []
        for field, value in fields:
            if field.startswith("_"):
                continue  # reserved by the data model; configured key lists cannot name them
            rows.append(f"{self._key(measurement, tags, field)}={value} {ts}\n")
        if not rows:
            raise BadMessage(WRONG_TYPE, f"{where}no fields left once reserved '_' names are skipped")
        return rows

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
            scale = _UNIX_SCALE[fmt]
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


def _checked_key(measurement: str, tags: dict[str, str], field: str) -> str:
    """The escaped series key, checked by the C parser's rules (reserved names, control
    characters, UTF-8, length); BadMessage(WRONG_TYPE) naming the problem otherwise."""
    try:
        key = series_key(measurement, tags, field)
    except ValueError as e:
        raise BadMessage(WRONG_TYPE, str(e)) from None
    result = lineprotocol.parse(f"{key}=0 0", max_errors=1)
    if result.bad_lines:
        reason = str(result.errors[0]).split(": ", 1)[-1] if result.errors else "invalid"
        raise BadMessage(WRONG_TYPE, f"series {key[:80]!r}: {reason}")
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
