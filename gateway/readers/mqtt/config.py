"""The ``[[readers.mqtt]]`` table: one broker connection with any number of subscriptions.

Every key is documented in ``sample.toml`` beside this file; the defaults live here only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from gateway.config.schema import in_range, positive, setting
from gateway.config.secrets import Secret
from gateway.config.units import ByteSize, Duration, parse_duration, parse_size
from gateway.readers.mqtt.topics import TopicTemplate, check_filter

#: MQTT v5 caps Receive Maximum at 65535 (a two-byte integer).
RECEIVE_MAXIMUM_LIMIT = 65535
#: The largest session expiry MQTT v5 can express; it means "never expires".
SESSION_EXPIRY_NEVER = 0xFFFFFFFF


def _qos(value: int) -> None:
    if value not in (0, 1, 2):
        raise ValueError(f"qos must be 0, 1 or 2, got {value}")


def _filter(value: str) -> None:
    check_filter(value)


def _template(value: str) -> None:
    TopicTemplate.parse(value)


def _separator(value: str) -> None:
    if not value:
        raise ValueError("separator must not be empty")


def _names(what: str):
    def check(values: list[str]) -> None:
        for v in values:
            if not v or v.startswith("_"):
                raise ValueError(f"{what} must not contain an empty name or one starting "
                                 f"with '_' (reserved), got {v!r}")
    return check


def _server(value: str) -> None:
    url = urlsplit(value)
    if url.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"must be mqtt://HOST:PORT or mqtts://HOST:PORT, got {value!r}")
    try:
        url.port
    except ValueError:
        raise ValueError(f"has an invalid port: {value!r}") from None
    if not url.hostname:
        raise ValueError(f"has no host: {value!r}")
    if url.path not in ("", "/") or url.query or url.username:
        raise ValueError(f"takes only a scheme, host and port, got {value!r} "
                         "(credentials go in username and password)")


def _fixed_tags(tags: dict[str, str]) -> None:
    for k, v in tags.items():
        if not k or k.startswith("_"):
            raise ValueError(f"tag key {k!r} is empty or starts with '_' (reserved)")
        if "\n" in k or "\n" in v:
            raise ValueError(f"tag {k!r} contains a newline")


@dataclass
class JsonOptions:
    """How JSON payloads become points (``format = "json"``)."""

    time_key: str = setting("", doc="key holding the timestamp; empty or absent: arrival time")
    time_format: Literal["unix", "unix_ms", "unix_us", "unix_ns", "rfc3339"] = setting(
        "unix", doc="how time_key is written")
    tag_keys: list[str] = setting(default_factory=list, check=_names("tag_keys"),
                                  doc="keys (after flattening) whose values become tags")
    field_keys: list[str] = setting(default_factory=list, check=_names("field_keys"),
                                    doc="keys kept as fields; empty means every number and boolean")
    string_fields: list[str] = setting(default_factory=list, check=_names("string_fields"),
                                       doc="keys whose string values are kept as string fields")
    measurement_key: str = setting("", doc="key whose value names the measurement")
    separator: str = setting("_", check=_separator, doc="joins the keys of nested objects")


@dataclass
class Subscription:
    """One topic filter, the format of its payloads, and how its topics map to series."""

    topic: str = setting(check=_filter, doc="topic filter, + and # wildcards allowed")
    format: Literal["line", "json", "value"] = setting("line")
    qos: int = setting(1, check=_qos)
    template: str = setting("", check=_template, doc="maps topic levels to measurement, tags, field")
    measurement: str = setting("", doc="measurement when neither template nor payload gives one")
    field: str = setting("value", doc="field name of format value when the template has no {_field}")
    tags: dict[str, str] = setting(default_factory=dict, check=_fixed_tags,
                                   doc="tags added to every point of this subscription")
    precision: Literal["ns", "us", "ms", "s"] = setting(
        "ns", doc="timestamp unit of line protocol payloads")
    json: JsonOptions = setting(default_factory=JsonOptions)

    def __post_init__(self) -> None:
        self.parsed_template = TopicTemplate.parse(self.template) if self.template else None

    def validate(self):
        t = self.parsed_template
        if t is not None:
            problem = t.compatibility_problem(self.topic)
            if problem:
                yield "template", problem
        if self.format == "line" and t is not None and (t.measurement_level is not None
                                                        or t.field_level is not None):
            yield "template", "{_measurement} and {_field} do not apply to line protocol payloads"
        if self.format == "json" and t is not None and t.field_level is not None:
            yield "template", "{_field} applies to format \"value\" only (JSON keys name the fields)"
        if self.format == "value" and not self.measurement and (t is None or t.measurement_level is None):
            yield "measurement", 'format "value" needs a measurement or a {_measurement} level in template'
        if self.format == "json" and not (self.measurement or self.json.measurement_key
                                          or (t is not None and t.measurement_level is not None)):
            yield "measurement", ('format "json" needs a measurement, json.measurement_key or a '
                                  "{_measurement} level in template")


@dataclass
class TlsOptions:
    ca_file: str = setting("", doc="CA bundle that signs the broker's certificate; empty: system CAs")
    cert_file: str = setting("", doc="client certificate (PEM) for brokers that require one")
    key_file: str = setting("", doc="private key of cert_file (PEM)")
    insecure_skip_verify: bool = setting(False, doc="accept any broker certificate (tests only)")

    def validate(self):
        if bool(self.cert_file) != bool(self.key_file):
            yield "cert_file" if not self.cert_file else "key_file", \
                "cert_file and key_file go together"


def _listen(value: str) -> None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {value!r}")


@dataclass
class ListenerOptions:
    """The LAN endpoint: an MQTT server for publishing devices, acknowledging after the WAL sync."""

    listen: str = setting("0.0.0.0:1883", check=_listen, doc="HOST:PORT the devices publish to")
    password_file: str = setting("", doc="mosquitto_passwd file (hashes) of the users who may publish")
    allow_anonymous: bool = setting(False, doc="accept clients without a user name (tests, closed networks)")
    tls_cert_file: str = setting("", doc="server certificate (PEM); with tls_key_file the endpoint speaks TLS only")
    tls_key_file: str = setting("", doc="private key of tls_cert_file (PEM)")
    forward: bool = setting(True, doc="pass every message on to this reader's broker for subscribers")
    max_connections: int = setting(256, check=in_range(1, 65535))
    max_packet_size: ByteSize = setting(default_factory=lambda: parse_size("1MiB"),
                                        check=in_range(64, 268435460),
                                        doc="larger packets close the connection (MQTT 5: DISCONNECT 0x95)")
    receive_maximum: int = setting(1000, check=in_range(1, RECEIVE_MAXIMUM_LIMIT),
                                   doc="QoS 1/2 messages a client may have unacknowledged (MQTT 5)")
    max_keepalive: Duration = setting(default_factory=lambda: parse_duration("5m"), check=in_range(5, 65535),
                                      doc="longer or no keep alive from a client is cut to this")
    connect_timeout: Duration = setting(default_factory=lambda: parse_duration("10s"), check=positive,
                                        doc="a connection that sends no CONNECT within this is closed")
    max_messages_per_second: int = setting(20000, check=positive,
                                           doc="per connection; faster clients are read more slowly")
    auth_failures_per_minute: int = setting(10, check=positive,
                                            doc="wrong passwords per client address before its CONNECTs are refused")
    session_expiry: Duration = setting(default_factory=lambda: parse_duration("7d"), check=positive,
                                       doc="longest a session of a disconnected client is kept")
    max_sessions: int = setting(1000, check=in_range(1, 1_000_000))

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def use_tls(self) -> bool:
        return bool(self.tls_cert_file)

    def validate(self):
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            yield "tls_key_file" if self.tls_cert_file else "tls_cert_file", \
                "tls_cert_file and tls_key_file go together"
        if not self.password_file and not self.allow_anonymous:
            yield "password_file", "needed unless allow_anonymous = true"
        if self.max_sessions < self.max_connections:
            yield "max_sessions", f"must be at least max_connections ({self.max_connections})"


@dataclass
class Config:
    """One broker connection of the MQTT reader."""

    server: str = setting("mqtt://127.0.0.1:1883", check=_server,
                          doc="mqtt://HOST:PORT or mqtts://HOST:PORT")
    client_id: str = setting("gateway", doc="fixed: the broker keeps the session under this id")
    name: str = setting("", doc="names this reader in logs and on the status page")
    protocol: Literal["5", "3.1.1"] = setting("5")
    session_expiry: Duration = setting(
        default_factory=lambda: parse_duration("7d"), check=positive,
        doc="how long the broker keeps the session (and queues messages) while the gateway is away")
    keepalive: Duration = setting(default_factory=lambda: parse_duration("30s"),
                                  check=in_range(5, 65535))
    receive_maximum: int = setting(40000, check=in_range(1, RECEIVE_MAXIMUM_LIMIT),
                                   doc="QoS 1/2 messages the broker may have unacknowledged at once")
    bucket: str = setting("raw", doc="store bucket the points go to")
    max_payload_size: ByteSize = setting(default_factory=lambda: parse_size("256KiB"),
                                         check=positive)
    max_batch_messages: int = setting(5000, check=positive,
                                      doc="messages per store write at most")
    batch_linger: Duration = setting(default_factory=lambda: parse_duration("50ms"),
                                     doc="how long a store write waits to gather more messages")
    max_writes_in_flight: int = setting(32, check=in_range(1, 1024))
    reconnect_min: Duration = setting(default_factory=lambda: parse_duration("1s"), check=positive)
    reconnect_max: Duration = setting(default_factory=lambda: parse_duration("30s"), check=positive)
    connect_timeout: Duration = setting(default_factory=lambda: parse_duration("10s"), check=positive)
    username: str = setting("")
    password: Secret | None = setting(None)
    tls: TlsOptions | None = setting(None, doc="TLS settings; mqtts:// without this uses system CAs")
    dead_letters: int = setting(20, check=in_range(0, 1000),
                                doc="bad messages kept with their error for the status page")
    subscriptions: list[Subscription] = setting(default_factory=list)
    listener: ListenerOptions | None = setting(
        None, doc="serve LAN devices on an MQTT port of the gateway itself (see README)")

    def __post_init__(self) -> None:
        _server(self.server)
        url = urlsplit(self.server)
        self.use_tls = url.scheme == "mqtts" or self.tls is not None
        self.host = url.hostname
        self.port = url.port or (8883 if self.use_tls else 1883)

    @property
    def endpoint(self) -> str:
        return f"{'mqtts' if self.use_tls else 'mqtt'}://{self.host}:{self.port}"

    @property
    def display_name(self) -> str:
        return self.name or self.client_id

    def validate(self):
        if not self.subscriptions:
            yield "subscriptions", "at least one [[readers.mqtt.subscriptions]] table is needed"
        if not self.client_id or len(self.client_id.encode()) > 65535:
            yield "client_id", f"must be a non-empty string, got {self.client_id!r}"
        if self.reconnect_max < self.reconnect_min:
            yield "reconnect_max", (f"must not be less than reconnect_min ({self.reconnect_min.text}), "
                                    f"got {self.reconnect_max.text}")
        if self.password is not None and not self.username:
            yield "password", "a password needs a username"
        if self.listener is not None and self.listener.forward and self.protocol != "5":
            # Forwarded messages must not come back to this reader: MQTT 5's No Local option.
            yield "listener.forward", 'passing messages on to the broker needs protocol = "5"'

