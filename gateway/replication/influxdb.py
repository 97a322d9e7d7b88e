"""The InfluxDB senders: line protocol to ``/api/v2/write`` (v2, VictoriaMetrics too) and to
``/write`` (v1). Timestamps go in nanoseconds, values bit for bit as stored; NaN and
infinities have no line protocol form and are skipped and counted."""

from __future__ import annotations

from gateway.replication.batching import Body, Chunk, line_protocol_bodies
from gateway.replication.sender import HttpSender


class LineProtocolSender(HttpSender):
    def encode(self, chunk: Chunk) -> list[Body]:
        out, skipped = line_protocol_bodies(chunk, int(self.config.batch_bytes))
        if skipped:
            self.status.counters["skipped_nonfinite"] += skipped
        return out


class InfluxV2Sender(LineProtocolSender):
    path = "/api/v2/write"

    def __init__(self, config, status) -> None:
        super().__init__(config, status)
        self._token = config.token.reveal() if config.token is not None else None

    def query(self) -> dict[str, str]:
        return {"org": self.config.org, "bucket": self.config.bucket, "precision": "ns"}

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self._token}"} if self._token else {}


class InfluxV1Sender(LineProtocolSender):
    path = "/write"

    def __init__(self, config, status) -> None:
        auth = (config.user, config.password.reveal()) if config.user else None
        super().__init__(config, status, basic_auth=auth)

    def query(self) -> dict[str, str]:
        q = {"db": self.config.db, "precision": "ns"}
        if self.config.rp:
            q["rp"] = self.config.rp
        return q
