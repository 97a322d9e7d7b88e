"""The ``[[replication]]`` tables: one stream each, its kind chosen by ``kind``.

Every kind shares the stream keys of :class:`StreamConfig`; each adds its own (the defaults of
replication live here). A table without ``kind`` or with an unknown one, or without ``url``, is
refused with its key path; a token or password written in plain text loads with a warning.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from typing import Any, Literal

from gateway.config.schema import Loader, in_range, positive, setting, unknown_kind
from gateway.config.secrets import Secret
from gateway.config.units import ByteSize, Duration, parse_duration, parse_size

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(kw_only=True)
class StreamConfig:
    name: str = setting(doc="the stream's name (letters, digits, '-', '_'); keys its position")
    kind: str = setting(doc="influxdb_v2, influxdb_v1, prometheus_remote_write or mqtt")
    url: str = setting(doc="the upstream's base URL (mqtt: mqtt://, mqtts://)")
    buckets: list[str] = setting(default_factory=lambda: ["raw", "rollup"],
                                 doc="buckets forwarded (a backlog drains rollups before raw)")
    measurements: list[str] | None = setting(None, doc="only these measurements (default: all)")
    flush_interval: Duration = setting(default_factory=lambda: parse_duration("10s"),
                                       check=positive,
                                       doc="a durable point reaches the upstream within this")
    batch_bytes: ByteSize = setting(default_factory=lambda: parse_size("500kB"), check=positive,
                                    doc="a batch holds at most this much, before compression")
    # Level 1 by default: on a backlog drain it costs half the CPU a point of level 6 for
    # about a sixth more bytes on the wire (docs/replication.md has the figures).
    gzip_level: int = setting(1, check=in_range(0, 9),
                              doc="1 (fast) to 9 (small); 0 sends uncompressed bodies")
    bandwidth: ByteSize | None = setting(None, doc="cap in bytes per second on the wire")
    timeout: Duration = setting(default_factory=lambda: parse_duration("30s"), check=positive,
                                doc="limit on connecting, sending and each read of the answer")
    ca_file: str | None = setting(None, doc="CA bundle for https/mqtts (default: the system's)")

    #: the keys that carry secrets; written in plain text they load with a warning
    secret_keys = ()

    def validate(self):
        if not _NAME.match(self.name):
            yield "name", f"use 1 to 64 letters, digits, '-' and '_', got {self.name!r}"
        if not self.buckets:
            yield "buckets", "must name at least one bucket"
        if len(set(self.buckets)) != len(self.buckets):
            yield "buckets", f"lists a bucket twice: {self.buckets}"
        yield from self.validate_url()

    def validate_url(self):
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            yield "url", f"expected an http:// or https:// URL, got {self.url!r}"


@dataclass(kw_only=True)
class InfluxV2Config(StreamConfig):
    org: str = setting(doc="organisation (VictoriaMetrics ignores it)")
    bucket: str = setting(doc="upstream bucket")
    token: Secret | None = setting(None, doc="API token: { file = ... } or { env = ... }")
    secret_keys = ("token",)


@dataclass(kw_only=True)
class InfluxV1Config(StreamConfig):
    db: str = setting(doc="database")
    rp: str | None = setting(None, doc="retention policy (default: the database's default)")
    user: str | None = setting(None)
    password: Secret | None = setting(None, doc="{ file = ... } or { env = ... }")
    secret_keys = ("password",)

    def validate(self):
        yield from super().validate()
        if (self.user is None) != (self.password is None):
            yield "password" if self.user else "user", "user and password go together"


@dataclass(kw_only=True)
class RemoteWriteConfig(StreamConfig):
    token: Secret | None = setting(None, doc="bearer token: { file = ... } or { env = ... }")
    user: str | None = setting(None, doc="basic auth user")
    password: Secret | None = setting(None, doc="basic auth password")
    secret_keys = ("token", "password")


@dataclass(kw_only=True)
class MqttConfig(StreamConfig):
    topic: str = setting("gateway/{bucket}/{measurement}",
                         doc="topic template: {bucket}, {measurement} and {stream}")
    format: Literal["line", "json"] = setting("line", doc="payload: line protocol or JSON")
    client_id: str | None = setting(None, doc="default: gateway-<name>")
    user: str | None = setting(None)
    password: Secret | None = setting(None)
    secret_keys = ("password",)

    def validate_url(self):
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            yield "url", f"expected an mqtt:// or mqtts:// URL, got {self.url!r}"
        try:
            self.topic.format(bucket="b", measurement="m", stream="s")
        except (KeyError, IndexError, ValueError) as e:
            yield "topic", f"unknown placeholder {e} (known: {{bucket}}, {{measurement}}, {{stream}})"


KINDS: dict[str, type[StreamConfig]] = {
    "influxdb_v2": InfluxV2Config,
    "influxdb_v1": InfluxV1Config,
    "prometheus_remote_write": RemoteWriteConfig,
    "mqtt": MqttConfig,
}


class ReplicationSection(list):
    """``[[replication]]``: the configured streams, each loaded with its kind's class."""

    @classmethod
    def __config_load__(cls, loader: Loader, raw: Any, path: str) -> "ReplicationSection | None":
        if not isinstance(raw, list):
            loader.error(path, "expected an array of tables ([[replication]])")
            return None
        out = cls()
        names: set[str] = set()
        for i, table in enumerate(raw):
            sub = f"{path}[{i}]"
            if not isinstance(table, dict):
                loader.error(sub, "expected a table")
                continue
            kind = table.get("kind")
            if kind is None:
                loader.error(f"{sub}.kind", f"is required (one of: {', '.join(KINDS)})")
                continue
            if kind not in KINDS:
                loader.error(f"{sub}.kind", unknown_kind("kind", kind, KINDS, KINDS))
                continue
            config = loader.load(KINDS[kind], table, sub)
            if config is None:
                continue
            if config.name in names:
                loader.error(f"{sub}.name", f"another stream is named {config.name!r}")
                continue
            names.add(config.name)
            for key in config.secret_keys:
                secret = getattr(config, key)
                if secret is not None and secret.file is None and secret.env is None:
                    loader.warn(f"{sub}.{key}", "written in plain text; a secret belongs in "
                                "{ file = \"...\" } or { env = \"...\" }")
            out.append(config)
        return out
