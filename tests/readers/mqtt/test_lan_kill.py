"""Devices publishing QoS 1 to `gateway run`'s LAN endpoint while the gateway is SIGKILLed: every
message a client saw acknowledged is stored. The clients are real ones nobody here wrote: paho
(with its own reconnects and resends) and Debian's mosquitto_pub (exit status 0 only after its
PUBACK)."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from mqtt_harness import (RECENT_NS, GatewayProcess, free_port, lan_config, password_file,
                          stored_points)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

USER, PASSWORD = "device", "kill-test-pw"
PAHO_MESSAGES = 8000
LISTENING = "devices publish to"


def test_every_acknowledged_message_survives_gateway_kills(mosquitto, tmp_path):
    port = free_port()
    config = tmp_path / "gateway.toml"
    config.write_text(lan_config(mosquitto, port, password_file(tmp_path, {USER: PASSWORD}),
                                 store='[store]\nwal_sync = "1s"').replace('topic = "lan/#"', 'topic = "kill/#"'))
    gateway = GatewayProcess(config, tmp_path / "data", tmp_path)
    gateway.start()
    try:
        publish_across_kills(gateway, port, config, tmp_path)
    finally:
        gateway.kill_if_running()


def publish_across_kills(gateway: GatewayProcess, port: int, config, tmp_path) -> None:
    gateway.wait_connected(line=LISTENING)

    # paho: QoS 1, persistent session, resends what was not acknowledged after each reconnect.
    # A message counts as acknowledged once paho reports its PUBACK (on_publish). Packet ids
    # do not wrap within PAHO_MESSAGES, so each names one message; no lock is shared with
    # paho's thread (its callbacks run under paho's own locks).
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="kill-paho", clean_session=False)
    client.username_pw_set(USER, PASSWORD)
    client.reconnect_delay_set(0.1, 0.5)
    client.max_inflight_messages_set(200)
    acked_mids: set[int] = set()
    seq_of_mid: dict[int, int] = {}
    client.on_publish = lambda c, u, mid, rc, props: acked_mids.add(mid)
    client.connect("127.0.0.1", port)
    client.loop_start()

    # mosquitto_pub: one process per message; the ones that exit 0 saw their PUBACK.
    acked_cli: list[int] = []
    stop = threading.Event()

    def mosquitto_pub_loop():
        i = 0
        while not stop.is_set():
            done = subprocess.run(
                [shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub", "-h", "127.0.0.1",
                 "-p", str(port), "-u", USER, "-P", PASSWORD, "-q", "1", "-i", f"kill-cli-{i}",
                 "-t", "kill/cli", "-m", f"kill,src=cli seq={i}i {RECENT_NS + i}"],
                capture_output=True, timeout=30)
            if done.returncode == 0:
                acked_cli.append(i)
            i += 1

    cli = threading.Thread(target=mosquitto_pub_loop, name="mosquitto_pub")
    cli.start()
    try:
        start = time.monotonic()
        kills = [2.5, 5.5]
        for i in range(PAHO_MESSAGES):
            seq_of_mid[client.publish("kill/paho", f"kill,src=paho seq={i}i {RECENT_NS + i}", qos=1).mid] = i
            if i % 50 == 49:
                time.sleep(0.05)   # about 1000 messages/s, spanning both kills
            if kills and time.monotonic() - start > kills[0]:
                kills.pop(0)
                gateway.kill()
                time.sleep(0.3)
                gateway.start()
                gateway.wait_connected(line=LISTENING)
        assert not kills, "the stream ended before both kills"
        deadline = time.monotonic() + 60
        while len(acked_mids) < PAHO_MESSAGES and time.monotonic() < deadline:
            time.sleep(0.1)
        acked_paho = {seq_of_mid[mid] for mid in list(acked_mids)}
    finally:
        stop.set()
        cli.join(timeout=60)
        client.disconnect()
        client.loop_stop()
    assert gateway.terminate() == 0, gateway.log()

    stored = stored_points(tmp_path / "data", config, measurement="kill")
    paho_stored = {ts - RECENT_NS for (key, ts) in stored if "src=paho" in key}
    cli_stored = {ts - RECENT_NS for (key, ts) in stored if "src=cli" in key}
    assert len(acked_paho) == PAHO_MESSAGES   # paho resent until every message was acknowledged
    assert acked_paho <= paho_stored, f"{len(acked_paho - paho_stored)} acknowledged paho messages lost"
    assert len(acked_cli) > 10
    assert set(acked_cli) <= cli_stored, f"acknowledged mosquitto_pub messages lost: {sorted(set(acked_cli) - cli_stored)[:5]}"
    assert gateway.starts == 3
