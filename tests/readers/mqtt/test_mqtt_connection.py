"""Connection handling against a real mosquitto: TLS with a client certificate, a password from
a secret source, refusals, reconnects with backoff, and the health the status page shows."""

from __future__ import annotations

import asyncio
import logging
import subprocess

import pytest

from gateway.backoff import backoff_delay
from mqtt_harness import Mosquitto, Publisher, start_gateway, stop_gateway, wait_for

PASSWORD = "s3cret-Pa55"


def test_backoff_doubles_with_jitter_up_to_the_cap():
    for attempt in range(12):
        low = backoff_delay(attempt, 1.0, 30.0, rng=lambda: 0.0)
        high = backoff_delay(attempt, 1.0, 30.0, rng=lambda: 1.0)
        full = min(30.0, 2.0 ** attempt)
        assert (low, high) == (full / 2, full)
    assert backoff_delay(1000, 1.0, 30.0) <= 30.0


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(directory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all EC P-256."""
    directory.mkdir()
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=gateway test CA", cwd=directory)
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name in ("server", "client"):
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=directory)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.pem", "-days", "2",
                 "-extfile", "san.ext", cwd=directory)
    return directory


@pytest.fixture
def secure_broker(tmp_path):
    certs = make_certificates(tmp_path / "certs")
    passwords = tmp_path / "passwords"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "gateway", PASSWORD],
                   check=True, capture_output=True)
    broker = Mosquitto(tmp_path / "mosquitto", listener_options=(
        f"cafile {certs}/ca.pem\ncertfile {certs}/server.pem\nkeyfile {certs}/server.key\n"
        "require_certificate true\nallow_anonymous false\n"
        f"password_file {passwords}\n"))
    broker.start()
    yield broker, certs
    broker.stop()


def secure_config(broker, certs, password_source: str) -> str:
    return f'''
[[readers.mqtt]]
server = "mqtts://127.0.0.1:{broker.port}"
client_id = "secure"
username = "gateway"
password = {password_source}
reconnect_min = "100ms"
reconnect_max = "500ms"
[readers.mqtt.tls]
ca_file = "{certs}/ca.pem"
cert_file = "{certs}/client.pem"
key_file = "{certs}/client.key"
[[readers.mqtt.subscriptions]]
topic = "secure/+"
format = "value"
template = "secure/{{_field}}"
measurement = "tls"
'''


@pytest.mark.integration
def test_tls_client_certificate_and_password_from_env(secure_broker, tmp_path, monkeypatch, caplog):
    broker, certs = secure_broker
    monkeypatch.setenv("GATEWAY_TEST_MQTT_PASSWORD", PASSWORD)
    caplog.set_level(logging.DEBUG)
    text = secure_config(broker, certs, '{ env = "GATEWAY_TEST_MQTT_PASSWORD" }')

    async def scenario():
        store, (reader,) = await start_gateway(text, tmp_path / "data")
        try:
            await wait_for(lambda: reader.connection.connected, 15, "a TLS connection")
            await wait_for(lambda: reader.connection.subscriptions[0]["granted"] is not None, 10, "SUBACK")
            publish = await asyncio.to_thread(_publish_over_tls, broker, certs)
            assert publish
            await wait_for(lambda: reader.messages_stored >= 1, 10, "the message")
            return reader.health(), await store.scan("raw", measurement="tls")
        finally:
            await stop_gateway(store, [reader])

    health, columns = asyncio.run(scenario())
    assert health["endpoint"] == f"mqtts://127.0.0.1:{broker.port}"
    assert [(c.key, list(c.values)) for c in columns] == [("tls temperature", [21.5])]
    assert f"connected to mqtts://127.0.0.1:{broker.port}" in caplog.text
    assert PASSWORD not in caplog.text and PASSWORD not in repr(health)


def _publish_over_tls(broker, certs) -> bool:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    c = paho.Client(CallbackAPIVersion.VERSION2, client_id="secure-publisher")
    c.username_pw_set("gateway", PASSWORD)
    c.tls_set(ca_certs=str(certs / "ca.pem"), certfile=str(certs / "client.pem"),
              keyfile=str(certs / "client.key"))
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    info = c.publish("secure/temperature", "21.5", qos=1)
    info.wait_for_publish(10)
    c.disconnect()
    c.loop_stop()
    return info.is_published()


@pytest.mark.integration
def test_wrong_password_is_reported_and_retried(secure_broker, tmp_path, caplog):
    broker, certs = secure_broker
    caplog.set_level(logging.INFO)
    text = secure_config(broker, certs, '"not-the-password"')

    async def scenario():
        store, (reader,) = await start_gateway(text, tmp_path / "data")
        try:
            await wait_for(lambda: "refused" in reader.connection.last_error, 15, "the refusal")
            await wait_for(lambda: caplog.text.count("reconnecting to") >= 2, 15, "a second try")
            return reader.health()
        finally:
            await stop_gateway(store, [reader])

    health = asyncio.run(scenario())
    assert health["connected"] is False and health["connects"] == 0
    assert f"mqtts://127.0.0.1:{broker.port} refused the connection" in health["last_error"]
    assert "authori" in health["last_error"].lower()
    assert caplog.text.count("reconnecting to") >= 2       # it keeps trying, backing off
    assert "not-the-password" not in caplog.text


@pytest.mark.integration
def test_broker_down_then_back(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    text = f'''
[[readers.mqtt]]
server = "{broker.url}"
client_id = "flaky"
reconnect_min = "100ms"
reconnect_max = "300ms"
[[readers.mqtt.subscriptions]]
topic = "f/+"
format = "value"
template = "f/{{_field}}"
measurement = "flaky"
'''

    async def scenario():
        store, (reader,) = await start_gateway(text, tmp_path / "data")
        try:
            await wait_for(lambda: reader.connection.connected, 10, "the first connection")
            await asyncio.to_thread(broker.stop)
            await wait_for(lambda: not reader.connection.connected, 10, "the disconnect")
            address = broker.url.replace("mqtt://", "")
            await wait_for(lambda: address in reader.connection.last_error
                           and caplog.text.count("reconnecting to") >= 2, 10, "failed reconnects")
            down = reader.health()
            await asyncio.to_thread(broker.start)
            await wait_for(lambda: reader.connection.connected, 10, "the reconnect")
            publisher = await asyncio.to_thread(Publisher, broker)
            try:
                publisher.publish("f/level", "3")
                await wait_for(lambda: reader.messages_stored == 1, 10, "the message")
            finally:
                publisher.close()
            return down, reader.health()
        finally:
            await stop_gateway(store, [reader])
            broker.stop()

    down, up = asyncio.run(scenario())
    assert down["connected"] is False and down["disconnects"] == 1
    assert broker.url.replace("mqtt://", "") in down["last_error"]
    assert up["connected"] is True and up["connects"] == 2 and up["session_present"] is True
    assert "session resumed" in caplog.text


@pytest.mark.integration
def test_missing_password_file_is_reported_not_fatal(mosquitto, tmp_path):
    """The file is there when the configuration is checked (a missing one is a configuration
    error) and gone when the reader connects."""
    missing = tmp_path / "no-such-password"
    missing.write_text("anything\n")
    missing.chmod(0o600)
    text = f'''
[[readers.mqtt]]
server = "{mosquitto.url}"
client_id = "nopass"
username = "gateway"
password = {{ file = "{missing}" }}
reconnect_min = "100ms"
reconnect_max = "200ms"
[[readers.mqtt.subscriptions]]
topic = "x"
format = "value"
measurement = "x"
'''

    async def scenario():
        from gateway.config import load_text
        from gateway.readers.mqtt import create
        from gateway.runtime import Context
        from gateway.store import Store

        config = load_text(text)
        missing.unlink()
        context = Context(config=config, data_dir=str(tmp_path / "data"))
        store = context.components["store"] = Store(context.data_dir, config.store)
        await store.start(context)
        reader = create(config.readers["mqtt"][0], context)
        await reader.start(context)
        try:
            await wait_for(lambda: "password" in reader.connection.last_error, 10, "the error")
            error = reader.connection.last_error
            missing.write_text("anything\n")     # the broker allows anonymous: any password does
            await wait_for(lambda: reader.connection.connected, 10, "the connection")
            return error
        finally:
            await stop_gateway(store, [reader])

    error = asyncio.run(scenario())
    assert f"cannot read secret file {missing}" in error and mosquitto.url in error
