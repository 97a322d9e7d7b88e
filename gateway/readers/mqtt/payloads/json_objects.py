"""JSON payloads: flat objects converted per group by one C call (:mod:`..jsonlines`), any
other object or array of objects by the general decoder here."""

from __future__ import annotations

import json
import math
from decimal import Decimal

from gateway import lineprotocol
from gateway.lineprotocol import MAX_STRING_BYTES, MAX_TIME_NS, MIN_TIME_NS, format_value
from gateway.readers.mqtt.config import Subscription
from gateway.readers.mqtt.jsonlines import GENERAL, LINE as LINE_TAKEN, TIME_SCALES, JsonLines
from gateway.readers.mqtt.payloads.decoder import (UNPARSEABLE, WRONG_TYPE, BadMessage, Decoder,
                                                   remember)
from gateway.readers.mqtt.payloads.sink import PointSink
from gateway.rfc3339 import parse_rfc3339

_FIELD, _TIME, _TAG, _MEASUREMENT, _SKIP = range(5)   # roles of JSON keys
_json_decode = json.JSONDecoder().decode


class JsonDecoder(Decoder):
    """Decodes JSON objects by the subscription's ``json`` options (roles of keys, time
    format, kept strings)."""

    def __init__(self, sub: Subscription) -> None:
        super().__init__(sub)
        j = sub.json
        self._roles: dict[str, int] = {}
        self._series: dict[tuple, dict[str, str]] = {}
        self._time_scale = TIME_SCALES.get(j.time_format)
        self._tag_keys = frozenset(j.tag_keys)
        self._field_keys = frozenset(j.field_keys)
        self._string_fields = frozenset(j.string_fields)
        self._json_lines: dict[object, JsonLines | None] = {}

    def _decode(self, topic: str, match, payload: bytes, arrival_ns: int,
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
        return remember(self._json_lines, key, converter)

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
        return remember(self._roles, key, role)

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
            series = remember(self._series, prefix, {})
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
