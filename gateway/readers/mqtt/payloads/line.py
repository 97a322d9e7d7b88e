"""Line protocol payloads: parsed straight into the sink's batch, or gathered for one parse
per group when every line carries its own timestamp."""

from __future__ import annotations

from gateway import lineprotocol
from gateway.batch import Batch
from gateway.lineprotocol import format_value
from gateway.readers.mqtt.payloads.decoder import UNPARSEABLE, BadMessage, Decoder
from gateway.readers.mqtt.payloads.sink import PointSink


def timestamped_lines(payload: bytes) -> int:
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


class LineDecoder(Decoder):
    """Decodes line protocol payloads; the subscription's and the topic's tags are added to
    every line's own."""

    def _decode(self, topic: str, match, payload: bytes, arrival_ns: int,
                sink: PointSink) -> None:
        extra_tags = self._tags(match)
        if not extra_tags:
            lines = timestamped_lines(payload)
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
