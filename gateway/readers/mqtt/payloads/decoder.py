"""What the decoders of every payload format share: the bad-message reasons, the topic
template match, the subscription's tags and the cache of checked series keys."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from gateway import lineprotocol
from gateway.errors import GatewayError
from gateway.lineprotocol import series_key
from gateway.readers.mqtt.config import Subscription
from gateway.readers.mqtt.topics import TopicMismatch

if TYPE_CHECKING:
    from gateway.readers.mqtt.payloads.sink import PointSink

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


class BadMessage(GatewayError, ValueError):
    """A message that cannot become points: ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class Decoder(ABC):
    """Decodes the messages of one subscription (its format, template and options); one
    subclass per format implements :meth:`_decode`."""

    def __init__(self, sub: Subscription) -> None:
        self.sub = sub
        self.template = sub.parsed_template
        self._keys: dict[tuple, str] = {}
        self._fixed_tags = dict(sub.tags)

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
            key = remember(self._keys, cache_key, checked_key(measurement, tags, field))
        return key

    @abstractmethod
    def _decode(self, topic: str, match, payload: bytes, arrival_ns: int, sink: PointSink) -> None:
        """Adds the points of one message whose topic matched (``match``: the template's
        captures, or None without a template)."""


def remember(cache: dict, key, value):
    """Stores value under key in a bounded cache (emptied when full: what repeats comes back
    at once) and returns it."""
    if len(cache) >= KEY_CACHE_SIZE:
        cache.clear()
    cache[key] = value
    return value


def checked_key(measurement: str, tags: dict[str, str], field: str) -> str:
    """The escaped series key, checked by the C parser's rules (reserved names, control
    characters, UTF-8, length); BadMessage(WRONG_TYPE) naming the problem otherwise."""
    try:
        key = series_key(measurement, tags, field)
        lineprotocol.check_series_key(key.encode())
    except ValueError as e:
        raise BadMessage(WRONG_TYPE, str(e)[:300]) from None
    return key
