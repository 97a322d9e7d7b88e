"""Payload decoding: one MQTT message of a subscription becomes points in a batch.

Three formats (``format`` in a subscription), a decoder each:

- ``line`` (:mod:`.line`): InfluxDB line protocol, one or many lines, parsed by
  :mod:`gateway.lineprotocol`;
- ``json`` (:mod:`.json_objects`): an object or an array of objects; nested objects are
  flattened with a separator; every JSON number becomes a float field (so a sensor that sends
  ``21`` and then ``21.5`` does not split into two types), booleans stay booleans, strings are
  kept only when asked;
- ``value`` (:mod:`.value`): a bare number or boolean; measurement and field come from the
  topic template or the subscription.

A bad message raises :class:`BadMessage` with one of :data:`REASONS` and a detail naming where
it went wrong. A bad message adds nothing (JSON, value) or only its good lines (line protocol,
whose partial-write semantics keep every good line).

Points go into a :class:`PointSink` (:mod:`.sink`). Line protocol payloads are parsed straight
into its batch. JSON payloads wait in the sink and are converted per group at
:meth:`PointSink.seal`: flat objects by one C call (:mod:`..jsonlines`), the rest by the
general decoder. Bare values and the general decoder's output become line protocol rows
(series key, value, timestamp) parsed in one C call per batch: escaping and key building per
point in Python would cost more than the MQTT client itself. Every series key is checked by
the C parser's rules once, when first seen (:mod:`.decoder`), so a row never fails later.
"""

from __future__ import annotations

from gateway.readers.mqtt.config import Subscription
from gateway.readers.mqtt.payloads.decoder import (INTERNAL_ERROR, OVERSIZED, REASONS, ROWS_TOPIC,
                                                   TOPIC_MISMATCH, UNPARSEABLE, WRONG_TYPE,
                                                   BadMessage, Decoder)
from gateway.readers.mqtt.payloads.json_objects import JsonDecoder
from gateway.readers.mqtt.payloads.line import LineDecoder
from gateway.readers.mqtt.payloads.sink import PointSink
from gateway.readers.mqtt.payloads.value import ValueDecoder

_DECODERS: dict[str, type[Decoder]] = {"line": LineDecoder, "json": JsonDecoder, "value": ValueDecoder}


def decoder_for(sub: Subscription) -> Decoder:
    """The decoder of the subscription's payload format."""
    return _DECODERS[sub.format](sub)


__all__ = ["INTERNAL_ERROR", "OVERSIZED", "REASONS", "ROWS_TOPIC", "TOPIC_MISMATCH", "UNPARSEABLE",
           "WRONG_TYPE", "BadMessage", "Decoder", "PointSink", "decoder_for"]
