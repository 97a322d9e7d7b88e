"""No loss across restarts: 20,000 QoS 1 messages while the gateway is SIGKILLed twice and the
broker restarted once; afterwards every message's point is in the store, and nothing else."""

from __future__ import annotations

import threading
import time

import pytest

from mqtt_harness import RECENT_NS as BASE_NS, GatewayProcess, Publisher, stored_points

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MESSAGES = 20_000
SERIES = 10
PUBLISH_SECONDS = 20          # the stream spans the kills and the broker restart


@pytest.mark.parametrize("head_points", [
    # Heads never fill: every point stays in the WAL and the heads (the reader's guarantee alone).
    pytest.param(65536, id="heads"),
    # 2,000 points per series: heads seal into ring blocks during the test (the usual case).
    pytest.param(1024, id="sealed-blocks"),
])
def test_no_message_lost_across_gateway_kills_and_a_broker_restart(mosquitto, tmp_path, head_points):
    config = tmp_path / "gateway.toml"
    config.write_text(f'''
[store]
wal_sync = "1s"
head_points = {head_points}
[[readers.mqtt]]
server = "{mosquitto.url}"
client_id = "durability"
reconnect_min = "100ms"
reconnect_max = "2s"
receive_maximum = 5000
[[readers.mqtt.subscriptions]]
topic = "dur/#"
qos = 1
format = "line"
''')
    data_dir = tmp_path / "data"
    gateway = GatewayProcess(config, data_dir, tmp_path)
    gateway.start()
    gateway.wait_connected()

    publisher = Publisher(mosquitto, client_id="durability-publisher")
    published = threading.Event()

    def publish_all():
        per_tick = MESSAGES // (PUBLISH_SECONDS * 20)
        for i in range(MESSAGES):
            publisher.publish(f"dur/k{i % SERIES}", f"dur,k=k{i % SERIES} seq={i}i {BASE_NS + i}")
            if i % per_tick == per_tick - 1:
                time.sleep(0.05)
        published.set()

    thread = threading.Thread(target=publish_all, name="publisher")
    start = time.monotonic()
    thread.start()
    try:
        def at(seconds: float) -> None:
            time.sleep(max(0.0, start + seconds - time.monotonic()))

        at(4)
        gateway.kill()                       # first SIGKILL, mid-stream
        time.sleep(0.5)
        gateway.start()
        gateway.wait_connected()
        at(9)
        mosquitto.restart()                  # the broker goes away and comes back
        gateway.wait_connected(times=2)
        at(14)
        gateway.kill()                       # second SIGKILL
        time.sleep(1.0)
        gateway.start()
        gateway.wait_connected()
        thread.join(timeout=120)
        assert published.is_set()
        deadline = time.monotonic() + 60
        while publisher.acked < MESSAGES and time.monotonic() < deadline:
            time.sleep(0.1)
        assert publisher.acked >= MESSAGES, f"the broker acknowledged {publisher.acked} publishes"
    finally:
        publisher.close()
        thread.join(timeout=5)

    # The broker still holds what the gateway has not acknowledged: let the gateway drain it,
    # stop it cleanly, and look. Every message must show up, however long the drain takes.
    expected = {(f"dur,k=k{i % SERIES} seq", BASE_NS + i): i for i in range(MESSAGES)}
    deadline = time.monotonic() + 90
    while True:
        time.sleep(2)
        assert gateway.terminate() == 0, gateway.log()
        stored = stored_points(data_dir, config)
        missing = expected.keys() - stored.keys()
        if not missing or time.monotonic() > deadline:
            break
        gateway.start()
        gateway.wait_connected()
    assert not missing, f"{len(missing)} messages lost, e.g. {sorted(missing)[:5]}"
    assert stored == expected                # every value exact, and nothing never published
    assert "session resumed" in gateway.log()
    assert gateway.starts >= 3
