"""Bare value payloads: a number or a boolean, one point per message."""

from __future__ import annotations

import math
import re

from gateway.readers.mqtt.payloads.decoder import UNPARSEABLE, WRONG_TYPE, BadMessage, Decoder
from gateway.readers.mqtt.payloads.sink import PointSink

_NUMBER = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_TRUE = frozenset((b"t", b"T", b"true", b"True", b"TRUE"))
_FALSE = frozenset((b"f", b"F", b"false", b"False", b"FALSE"))


class ValueDecoder(Decoder):
    """Decodes bare values; measurement and field come from the topic template or the
    subscription."""

    def _decode(self, topic: str, match, payload: bytes, arrival_ns: int,
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
