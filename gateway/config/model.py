"""The configuration's sections and their built-in defaults (the one place defaults live)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterator, Literal

from gateway.config.schema import Loader, in_range, positive, setting, unknown_kind
from gateway.replication.config import ReplicationSection
from gateway.config.units import ByteSize, Duration, parse_duration, parse_size


@dataclass
class GatewaySection:
    data_dir: str = setting("/var/lib/gateway", doc="where the store, WAL and state live")
    log_level: Literal["debug", "info", "warning", "error"] = setting("info")
    hardware: Literal["auto", "real", "emulated"] = setting(
        "auto", doc="I2C/GPIO back-end; auto means real on a Pi, else emulated (GATEWAY_HW overrides)")


def _positive_retention(value: Duration) -> None:
    if value <= 0:
        raise ValueError(f"must be longer than 0s, got {value.text!r}; write retention = "
                         f"\"none\" for no age limit")


@dataclass
class BucketConfig:
    max_size: ByteSize = setting(default_factory=lambda: parse_size("256MiB"), check=positive)
    # "0s" is refused rather than read as "forever" (InfluxDB's convention) or "keep nothing":
    # either reading could be meant, and a guess deletes data or keeps it past a legal limit.
    retention: Duration | None = setting(
        None, check=_positive_retention,
        doc='age limit, or "none" for none (the bucket is then limited by max_size only); '
            'left out: 30d for raw, 365d for rollup, none for other buckets')
    max_series: int = setting(
        1_000_000, check=in_range(1, (1 << 32) - 1),
        doc="points of new series are refused (counted as series_limited) once the bucket holds "
            "this many series, as InfluxDB's max-series-per-database")
    head_max_age: Duration | None = setting(
        None, check=positive,
        doc="a head of this bucket older than this is sealed even if not full; leave it out "
            "for [store] head_max_age")

    def __config_render__(self) -> dict[str, Any]:
        """Rendered with ``retention = "none"`` when it has none: left out, a built-in bucket
        would get its built-in retention back."""
        items = {key: value for key, value in vars(self).items() if value is not None}
        return items if self.retention is not None else {**items, "retention": "none"}


#: The buckets that always exist, as they would be written in the file. A table for one of
#: them in the file changes only the keys it gives: leaving `retention` out of
#: `[store.buckets.rollup]` keeps the year, it does not remove the limit.
BUILTIN_BUCKETS: dict[str, dict[str, str]] = {
    "raw": {"max_size": "256MiB", "retention": "30d"},
    # A rollup series gets a point a minute: blocks of 4 hours (240 points) rather than
    # 15 minutes take a quarter of the bytes a point, and a head stays within 4 KiB
    # (README, "Rollups").
    "rollup": {"max_size": "256MiB", "retention": "365d", "head_max_age": "4h"},
}


def _over_builtin(name: str, table: Any) -> Any:
    """A bucket's table from the file laid over its built-in one; ``retention = "none"``
    removes the age limit (the built-in buckets have one to remove)."""
    if not isinstance(table, dict):
        return table
    merged = {**BUILTIN_BUCKETS.get(name, {}), **table}
    if merged.get("retention") == "none":
        del merged["retention"]
    return merged


def _default_buckets() -> dict[str, BucketConfig]:
    return {name: BucketConfig(**{key: parse_size(text) if key == "max_size" else parse_duration(text)
                                  for key, text in table.items()})
            for name, table in BUILTIN_BUCKETS.items()}


@dataclass
class StoreSection:
    wal_sync: Duration | Literal["always"] = setting(
        default_factory=lambda: parse_duration("1s"),
        doc='group-commit interval of the WAL, or "always" to sync every write')
    head_points: int = setting(1024, check=in_range(16, 65536),
                               doc="points per series buffered before a block is sealed")
    head_max_age: Duration = setting(default_factory=lambda: parse_duration("15m"), check=positive,
                                     doc="a head older than this is sealed even if not full")
    commit_points: int = setting(
        65536, check=in_range(1024, 4194304),
        doc="a group commit starts early once this many points wait for it (bounds memory)")
    checkpoint_interval: Duration = setting(
        default_factory=lambda: parse_duration("10s"), check=positive,
        doc="how often sealed blocks are synced and indexed and covered WAL segments deleted")
    wal_segment_size: ByteSize = setting(
        default_factory=lambda: parse_size("256KiB"), check=positive,
        doc="a new WAL segment starts once the current one is this big (segments are "
            "created at this size, zero-filled)")
    local_sync: Duration = setting(
        default_factory=lambda: parse_duration("30s"), check=positive,
        doc="points that no sender waits for (I2C, GPIO and host readers) are synced at the "
            "latest this long after they were taken, or earlier with any other sync; a power "
            "cut may cost that much of them")
    buckets: dict[str, BucketConfig] = setting(
        default_factory=_default_buckets,
        doc="raw and rollup always exist; a table here changes the keys it gives or adds a bucket")

    @classmethod
    def __config_load__(cls, loader: Loader, raw: Any, path: str) -> "StoreSection | None":
        """A table for a built-in bucket is laid over the built-in one key by key."""
        if isinstance(raw, dict) and isinstance(raw.get("buckets"), dict):
            raw = {**raw, "buckets": {name: _over_builtin(name, table)
                                      for name, table in raw["buckets"].items()}}
        return loader.load_table(cls, raw, path)

    def __post_init__(self):
        self.buckets = {**_default_buckets(), **self.buckets}

    def validate(self):
        for name, bucket in self.buckets.items():
            if not name.replace("_", "").replace("-", "").isalnum():
                yield f"buckets.{name}", "bucket names use letters, digits, '-' and '_' only"
            if bucket.max_size < 65536:
                yield f"buckets.{name}.max_size", f"must be at least 64KiB, got {bucket.max_size.text}"


@dataclass
class HttpSection:
    listen: str = setting(
        default_factory=lambda: os.environ.get("GATEWAY_HTTP_LISTEN") or "127.0.0.1:8080",
        doc="address:port of the status page and HTTP API (default: GATEWAY_HTTP_LISTEN when "
            "set, as on the image: 0.0.0.0:80; else 127.0.0.1:8080)")
    public_status: bool = setting(
        True, doc="status pages readable without a token; the APIs always need one")
    max_body: ByteSize = setting(default_factory=lambda: parse_size("8MiB"), check=positive,
                                 doc="largest request body (413 above it)")
    max_decompressed: ByteSize = setting(
        default_factory=lambda: parse_size("32MiB"), check=positive,
        doc="largest body after gzip decompression (413 above it: no gzip bombs)")
    threads: int = setting(4, check=in_range(1, 64), doc="worker threads answering requests")
    timeout: Duration = setting(
        default_factory=lambda: parse_duration("30s"), check=positive,
        doc="a connection idle this long is closed; a store call waits at most this long")

    def validate(self):
        host, sep, port = self.listen.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            yield "listen", f"expected HOST:PORT, got {self.listen!r}"


@dataclass
class TaskConfig:
    """A downsampling task: a Flux program with ``option task = {name: ..., every: ...}``."""

    flux: str | None = setting(None, doc="the task's Flux program")
    file: str | None = setting(None, doc="a file holding the task's Flux program (instead of flux)")

    def source(self) -> str:
        if self.flux is not None:
            return self.flux
        with open(self.file, encoding="utf-8") as f:
            return f.read()

    def validate(self):
        if (self.flux is None) == (self.file is None):
            yield "", "give the program either inline (flux) or in a file (file), not both"
            return
        try:
            source = self.source()
        except OSError as e:
            yield "file", f"cannot read {self.file}: {e.strerror}"
            return
        from gateway.tasks.spec import TaskSpecError, task_spec

        try:
            task_spec(source)
        except TaskSpecError as e:
            yield "file" if self.file is not None else "flux", str(e)


@dataclass
class SchedulerSection:
    default_rollup: bool = setting(
        True, doc="run the built-in task keeping 1-minute mean/min/max/count of raw in rollup")
    catch_up: Duration = setting(default_factory=lambda: parse_duration("1d"), check=positive,
                                 doc="after downtime, missed runs up to this far back are run")
    late_data: Duration = setting(default_factory=lambda: parse_duration("1d"), check=positive,
                                  doc="late points this recent make their window run again")
    history: int = setting(200, check=in_range(1, 100000), doc="runs kept in each task's history")
    run_timeout: Duration = setting(default_factory=lambda: parse_duration("60s"), check=positive,
                                    doc="a task run taking longer fails")


class ReadersSection(dict):
    """``{kind: [Config, ...]}``; each kind loads with its own module's ``Config``."""

    @classmethod
    def __config_load__(cls, loader: Loader, raw: Any, path: str) -> "ReadersSection | None":
        from gateway.readers import KINDS, available_kinds, kind_module

        if not isinstance(raw, dict):
            loader.error(path, "expected a table of reader kinds")
            return None
        known = available_kinds()
        out = cls()
        for kind, tables in raw.items():
            sub = f"{path}.{kind}"
            if kind not in known:
                loader.error(sub, unknown_kind("reader kind", kind, KINDS, known))
                continue
            entries = tables if isinstance(tables, list) else [tables]
            config_cls = kind_module(kind).Config
            loaded = [loader.load(config_cls, t, f"{sub}[{i}]" if isinstance(tables, list) else sub)
                      for i, t in enumerate(entries)]
            out[kind] = [c for c in loaded if c is not None]
        return out


def _default_readers() -> ReadersSection:
    """With no configuration file: host metrics, plus what each kind offers by default."""
    from gateway.readers import available_kinds, kind_module

    out = ReadersSection()
    for kind in available_kinds():
        defaults = getattr(kind_module(kind), "default_configs", None)
        if defaults is not None:
            configs = list(defaults())
            if configs:
                out[kind] = configs
    return out


@dataclass
class ClockSection:
    require_sync: bool | Literal["auto"] = setting(
        "auto", doc="hold the points the gateway times itself until the kernel reports the clock "
                    "synchronised, then store them re-timed (docs/clock.md); auto: on a Raspberry "
                    "Pi, which has no real-time clock, and with an emulated rig clock; false "
                    "where no NTP server is ever reachable")
    max_held: ByteSize = setting(
        default_factory=lambda: parse_size("64MiB"), check=positive,
        doc="bytes of held points (as line protocol) kept on the card until the clock is "
            "synchronised; writes beyond it are refused")


@dataclass
class Config:
    gateway: GatewaySection = setting(default_factory=GatewaySection)
    store: StoreSection = setting(default_factory=StoreSection)
    clock: ClockSection = setting(default_factory=ClockSection)
    http: HttpSection = setting(default_factory=HttpSection)
    readers: ReadersSection = setting(default_factory=_default_readers)
    scheduler: SchedulerSection = setting(default_factory=SchedulerSection)
    tasks: list[TaskConfig] = setting(default_factory=list)
    replication: ReplicationSection = setting(default_factory=ReplicationSection,
                                              doc="[[replication]] streams to upstreams")


def cross_checks(config: Config, loaded: list[tuple[str, Any]]) -> Iterator[tuple[str, str]]:
    """Problems no single table can see, as (key path, message): a ``bucket`` setting that
    names no bucket of the store; two MQTT readers that would share one session on a broker
    (the broker drops one connection whenever the other connects)."""
    buckets = config.store.buckets
    for path, obj in loaded:
        bucket = getattr(obj, "bucket", None)
        if path.startswith("readers.") and isinstance(bucket, str) and bucket not in buckets:
            yield (f"{path}.bucket", f"unknown bucket {bucket!r} (the store has "
                   f"{', '.join(sorted(buckets))}; add [store.buckets.{bucket}] to create it)")
    paths = {id(obj): path for path, obj in loaded}
    sessions: dict[tuple[str, str], str] = {}
    for reader in config.readers.get("mqtt", []):
        path = paths.get(id(reader))
        if path is None:
            continue
        first = sessions.setdefault((reader.endpoint, reader.client_id), path)
        if first != path:
            yield (f"{path}.client_id", f"client id {reader.client_id!r} is already used by "
                   f"{first} on {reader.endpoint}; give each reader its own client_id")
    for i, stream in enumerate(config.replication):
        for bucket in stream.buckets:
            if bucket not in buckets:
                yield (f"replication[{i}].buckets",
                       f"unknown bucket {bucket!r} (configured: {', '.join(buckets)})")
