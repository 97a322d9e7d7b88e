"""The [[readers.mqtt]] table: defaults, and errors that name the key and the bad value."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, load_text, render
from gateway.readers.mqtt.topics import TopicTemplate, check_filter, filter_matches

MINIMAL = '''
[[readers.mqtt]]
[[readers.mqtt.subscriptions]]
topic = "sensors/#"
'''


def load_mqtt(text: str):
    return load_text(text).readers["mqtt"]


def errors_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_text(text)
    return str(info.value)


def test_defaults():
    (c,) = load_mqtt(MINIMAL)
    assert (c.endpoint, c.client_id, c.protocol, c.bucket) == ("mqtt://127.0.0.1:1883", "gateway", "5", "raw")
    assert c.session_expiry == 7 * 86400 and c.keepalive == 30 and c.receive_maximum == 40000
    assert c.reconnect_max == 30
    sub = c.subscriptions[0]
    assert (sub.qos, sub.format, sub.precision) == (1, "line", "ns")


def test_several_readers_and_tls_port():
    text = MINIMAL + '''
[[readers.mqtt]]
server = "mqtts://broker.example"
client_id = "edge-2"
[readers.mqtt.tls]
ca_file = "/etc/ca.pem"
[[readers.mqtt.subscriptions]]
topic = "a/+"
'''
    first, second = load_mqtt(text)
    assert second.endpoint == "mqtts://broker.example:8883" and second.tls.ca_file == "/etc/ca.pem"


@pytest.mark.parametrize("snippet,message", [
    ('qos = 3', "subscriptions[0].qos: qos must be 0, 1 or 2, got 3"),
    ('format = "xml"', "subscriptions[0].format: must be one of 'line', 'json', 'value', got 'xml'"),
    ('template = "sensors/{a}/{a}"', "{a} appears twice"),
    ('template = "sensors/{_x}"', "names starting with '_' are reserved"),
    ('template = "other/{a}"', "level 1 is 'other' but topic filter 'sensors/#' has 'sensors'"),
    ('precision = "m"', "precision: must be one of"),
])
def test_subscription_errors_name_the_key(snippet, message):
    assert message in errors_of(MINIMAL + snippet + "\n")


@pytest.mark.parametrize("snippet,message", [
    ('server = "http://x:1"', "readers.mqtt[0].server: must be mqtt://HOST:PORT or mqtts://HOST:PORT, got 'http://x:1'"),
    ('server = "mqtt://x:99999"', "server: has an invalid port"),
    ('server = "mqtt://user:pw@x:1"', "server: takes only a scheme, host and port"),
    ('receive_maximum = 70000', "receive_maximum: must be between 1 and 65535, got 70000"),
    ('keepalive = "2s"', "keepalive: must be between 5 and 65535"),
    ('reconnect_min = "10s"\nreconnect_max = "5s"', "reconnect_max: must not be less than reconnect_min (10s), got 5s"),
    ('password = "x"', "password: a password needs a username"),
    ('session_expiry = "soon"', "session_expiry: invalid duration 'soon'"),
    ('client_id = ""', "client_id: must be a non-empty string"),
    ('recieve_maximum = 5', "unknown key 'recieve_maximum'; did you mean 'receive_maximum'?"),
])
def test_connection_errors_name_the_key(snippet, message):
    text = "[[readers.mqtt]]\n" + snippet + '\n[[readers.mqtt.subscriptions]]\ntopic = "a"\n'
    assert message in errors_of(text)


def test_format_specific_checks():
    base = '[[readers.mqtt]]\n[[readers.mqtt.subscriptions]]\ntopic = "a/+"\n'
    assert 'format "value" needs a measurement' in errors_of(base + 'format = "value"\n')
    assert 'format "json" needs a measurement' in errors_of(base + 'format = "json"\n')
    assert "do not apply to line protocol" in errors_of(base + 'template = "a/{_field}"\n')
    assert "starting with '_' (reserved)" in errors_of(
        base + 'format = "json"\nmeasurement = "m"\n[readers.mqtt.subscriptions.json]\ntag_keys = ["_x"]\n')
    assert "at least one [[readers.mqtt.subscriptions]]" in errors_of("[[readers.mqtt]]\n")


def test_password_is_never_rendered():
    text = ('[[readers.mqtt]]\nusername = "u"\npassword = "hunter2"\n'
            '[[readers.mqtt.subscriptions]]\ntopic = "a"\n')
    config = load_text(text)
    shown = render(config)
    assert "hunter2" not in shown and "hunter2" not in repr(config.readers["mqtt"][0])


@pytest.mark.parametrize("bad", ["", "a/#/b", "a/b#", "a+/b", "x\0y"])
def test_invalid_filters(bad):
    with pytest.raises(ValueError):
        check_filter(bad)


@pytest.mark.parametrize("filt,topic,hit", [
    ("a/+/c", "a/b/c", True), ("a/+/c", "a/b/d", False), ("a/#", "a", True),
    ("a/#", "a/b/c", True), ("#", "$SYS/x", False), ("+/x", "$SYS/x", False), ("a/+", "a/b/c", False),
    ("a/b", "a/b", True), ("a/+", "a/", True)])
def test_filter_matching(filt, topic, hit):
    assert filter_matches(filt.split("/"), topic.split("/")) is hit


def test_template_caches_matches_and_bounds_the_cache():
    t = TopicTemplate.parse("s/{d}")
    for i in range(5000):
        assert t.match(f"s/{i}").tags == (("d", str(i)),)
    assert len(t._cache) <= 4096
