"""The points of a group of MQTT messages, gathered cheaply and parsed in a few C calls."""

from __future__ import annotations

import bisect
import time

from gateway import lineprotocol
from gateway.batch import Batch
from gateway.errors import LineProtocolError
from gateway.readers.mqtt.payloads.decoder import INTERNAL_ERROR, ROWS_TOPIC, UNPARSEABLE


class PointSink:
    """The points of a group of messages, gathered cheaply and parsed in a few C calls.

    ``batch`` takes points parsed per message; ``rows`` holds line protocol rows (JSON and
    bare values); ``timestamped`` holds line protocol payloads whose every line carries its own
    timestamp, per precision: those need no per-message arrival time, so one parse serves the
    whole group and its errors are mapped back to their messages by line number. ``json``
    holds JSON payloads per (JSON decoder, topic match) with their topics and arrival times.
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
