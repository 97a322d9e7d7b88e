"""The MQTT sender: points published to a broker at QoS 1, one message per measurement and
batch, on a topic from the stream's template (``{bucket}``, ``{measurement}``, ``{stream}``).

Payload ``line``: line protocol lines (nanosecond times), as the InfluxDB senders send them;
``json``: one JSON object a line, ``{"measurement", "tags", "field", "value", "time"}`` (time in
ns; NaN and infinities skipped and counted like line protocol). A batch counts as delivered
once the broker acknowledged every message of it (PUBACK). paho keeps its outgoing session in
memory only, so after a restart it is the stream's own durable position that says what to
send again; a broker that went away mid-batch may get some messages twice (at least once).

paho runs its network thread (``loop_start``); publishing and waiting for PUBACK happen on the
stream's worker thread, bounded by the stream's ``timeout``.
"""

from __future__ import annotations

import json
import math
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from gateway.replication.batching import (Body, Chunk, Lines, SeriesPoints, bodies,
                                          line_protocol_bodies)
from gateway.replication.sender import RetryLater

_BOOL, _FLOAT = 4, 1


@dataclass(slots=True)
class Message(Body):
    topic: str = ""


class MqttSender:
    def __init__(self, config, status) -> None:
        self.config = config
        self.status = status
        parts = urllib.parse.urlsplit(config.url)
        self.host = parts.hostname or ""
        self.port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        self.tls = parts.scheme == "mqtts"
        self._client: paho.Client | None = None
        self._connected = threading.Event()
        self._connect_error = ""

    # -- encoding -----------------------------------------------------------------------
    def prepare(self, chunk: Chunk) -> list[Message]:
        """The chunk's messages ahead of sending (payloads go uncompressed)."""
        return self.encode(chunk)

    def encode(self, chunk: Chunk) -> list[Message]:
        by_measurement: dict[str, list[SeriesPoints]] = {}
        for sp in chunk.series:
            by_measurement.setdefault(sp.info.measurement, []).append(sp)
        out: list[Message] = []
        limit = int(self.config.batch_bytes)
        for measurement, series in by_measurement.items():
            topic = self.config.topic.format(bucket=chunk.bucket, measurement=measurement,
                                             stream=self.config.name)
            part = Chunk(chunk.bucket, series)
            if self.config.format == "line":
                found, skipped = line_protocol_bodies(part, limit)
            else:
                texts, skipped = self._json_lines(part)
                found = list(bodies(texts, limit))
            if skipped:
                self.status.counters["skipped_nonfinite"] += skipped
            out += [Message(b.data, b.points, topic, ends=b.ends) for b in found]
        return out

    @staticmethod
    def _json_lines(chunk: Chunk) -> tuple[list[Lines], int]:
        texts, skipped = [], 0
        for sp in chunk.series:
            info = sp.info
            lines = []
            for ts, v in zip(sp.timestamps, sp.values):
                if info.type == _FLOAT and not math.isfinite(v):
                    skipped += 1
                    continue
                value = bool(v) if info.type == _BOOL else v
                lines.append(json.dumps({"measurement": info.measurement, "tags": info.tags,
                                         "field": info.field, "value": value, "time": ts},
                                        separators=(",", ":")) + "\n")
            texts.append(Lines("".join(lines).encode()))  # JSON escapes line feeds
        return texts, skipped

    # -- worker thread ------------------------------------------------------------------
    def _connect(self) -> paho.Client:
        if self._client is not None and self._connected.is_set():
            return self._client
        self.close()
        c = self.config
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=c.client_id or f"gateway-{c.name}")
        if c.user:
            client.username_pw_set(c.user, c.password.reveal() if c.password else None)
        if self.tls:
            client.tls_set(ca_certs=c.ca_file, cert_reqs=ssl.CERT_REQUIRED)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        self._connected.clear()
        self._connect_error = ""
        try:
            client.connect(self.host, self.port, keepalive=30)
        except ssl.SSLCertVerificationError as e:
            self._fail("tls", f"TLS certificate not accepted: {e.verify_message or e}")
        except ssl.SSLError as e:
            self._fail("tls", f"TLS error: {e.reason or e}")
        except OSError as e:
            self._fail("network", f"cannot connect: {e.strerror or e}")
        client.loop_start()
        self._client = client
        if not self._connected.wait(float(c.timeout)) or self._connect_error:
            self.close()
            self._fail("refused" if self._connect_error else "timeout",
                        self._connect_error or f"no CONNACK within {float(c.timeout):g} s")
        return client

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._connect_error = f"broker refused the connection: {reason_code}"
        self._connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()

    def _fail(self, kind: str, message: str):
        self.status.error(kind, f"{self.config.url}: {message}")
        raise RetryLater(self.status.last_error)

    def deliver(self, bucket: str, messages: list[Message]) -> None:
        client = self._connect()
        pending = []
        for m in messages:
            info = client.publish(m.topic, m.data, qos=1)
            if info.rc != paho.MQTT_ERR_SUCCESS:
                self._fail("network", f"publish failed: {paho.error_string(info.rc)}")
            pending.append((m, info))
            self.status.counters["bytes_sent"] += len(m.data)
        for m, info in pending:
            try:
                info.wait_for_publish(float(self.config.timeout))
            except (RuntimeError, ValueError) as e:
                self._fail("network", f"publish failed: {e}")
            if not info.is_published():
                self.close()  # paho would resend it on its own; the stream resends instead
                self._fail("timeout", f"no PUBACK within {float(self.config.timeout):g} s")
            self.status.counters["points_sent"] += m.points
            self.status.counters["batches_sent"] += 1
            self.status.last_ack_at = time.time()

    def close(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None
