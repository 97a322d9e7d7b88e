"""The [[replication]] tables: validated with FILE:LINE: key.path, secrets warned about."""

from __future__ import annotations

import logging

import pytest

from gateway import config as cfg
from gateway.errors import ConfigError

V2 = """\
[[replication]]
name = "vm"
kind = "influxdb_v2"
url = "http://127.0.0.1:8428"
org = "o"
bucket = "b"
token = { env = "UPSTREAM_TOKEN" }
"""


def load(text):
    return cfg.load_text(text, "gw.toml")


def problems(text):
    with pytest.raises(ConfigError) as e:
        load(text)
    return str(e.value).splitlines()


def test_a_stream_loads_with_its_defaults_and_no_warning(caplog):
    with caplog.at_level(logging.WARNING):
        stream = load(V2).replication[0]
    assert caplog.records == []
    assert (stream.kind, stream.buckets, float(stream.flush_interval)) == ("influxdb_v2", ["raw", "rollup"], 10.0)
    assert int(stream.batch_bytes) == 500_000 and stream.gzip_level == 1
    assert stream.token.env == "UPSTREAM_TOKEN"


def test_no_file_means_no_streams():
    assert cfg.defaults().replication == []


def test_unknown_kind_is_refused_with_its_line_and_a_suggestion():
    text = V2 + '\n[[replication]]\nname = "x"\nkind = "influxdb_v3"\nurl = "http://h"\n'
    assert problems(text) == ["gw.toml:11: replication[1].kind: unknown kind 'influxdb_v3'; did you "
                              "mean 'influxdb_v2'? (known: influxdb_v2, influxdb_v1, "
                              "prometheus_remote_write, mqtt)"]


def test_a_stream_without_url_or_kind_is_refused():
    text = '[[replication]]\nname = "a"\nkind = "influxdb_v1"\ndb = "d"\n\n[[replication]]\nname = "b"\n'
    assert problems(text) == ["gw.toml:1: replication[0].url: is required",
                              "gw.toml:6: replication[1].kind: is required (one of: influxdb_v2, "
                              "influxdb_v1, prometheus_remote_write, mqtt)"]


def test_kind_keys_are_checked():
    text = V2.replace('org = "o"\n', 'orgg = "o"\n')
    assert problems(text) == ["gw.toml:1: replication[0].org: is required",
                              "gw.toml:5: replication[0].orgg: unknown key 'orgg'; did you mean 'org'?"]


def test_a_plain_text_token_loads_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, "gateway.config"):
        stream = load(V2.replace('{ env = "UPSTREAM_TOKEN" }', '"s3cret"')).replication[0]
    assert stream.token.reveal() == "s3cret"
    assert [r.getMessage() for r in caplog.records] == [
        'gw.toml:7: replication[0].token: written in plain text; a secret belongs in '
        '{ file = "..." } or { env = "..." }']
    assert "s3cret" not in cfg.render(load(V2.replace('{ env = "UPSTREAM_TOKEN" }', '"s3cret"')))


@pytest.mark.parametrize("line, message", [
    ('url = "ftp://h"', "replication[0].url: expected an http:// or https:// URL, got 'ftp://h'"),
    ('buckets = ["raw", "nope"]', "replication[0].buckets: unknown bucket 'nope' (configured: raw, rollup)"),
    ('gzip_level = 12', "replication[0].gzip_level: must be between 0 and 9, got 12"),
    ('name = "a b"', "replication[0].name: use 1 to 64 letters, digits, '-' and '_', got 'a b'"),
    ('flush_interval = "0s"', "replication[0].flush_interval: must be greater than zero, got 0s"),
])
def test_bad_values_name_their_key(line, message):
    key = line.split(" = ")[0]
    text = "\n".join(line if l.startswith(key + " =") else l for l in V2.splitlines())
    if key not in V2:
        text += "\n" + line
    got = problems(text + "\n")
    assert len(got) == 1 and got[0].endswith(message), got


def test_stream_names_are_unique():
    assert problems(V2 + "\n" + V2)[-1].endswith("replication[1].name: another stream is named 'vm'")


def test_mqtt_topic_placeholders_are_checked():
    text = ('[[replication]]\nname = "m"\nkind = "mqtt"\nurl = "mqtt://127.0.0.1:1883"\n'
            'topic = "gw/{site}/{measurement}"\n')
    assert problems(text)[0].endswith("replication[0].topic: unknown placeholder 'site' (known: "
                                      "{bucket}, {measurement}, {stream})")
