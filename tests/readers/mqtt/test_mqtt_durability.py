"""No loss across restarts: 20,000 QoS 1 messages while the gateway is SIGKILLed twice and the
broker restarted once; afterwards every message's point is in the store, and nothing else."""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import pytest

from mqtt_harness import RECENT_NS as BASE_NS, Publisher

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MESSAGES = 20_000
SERIES = 10
PUBLISH_SECONDS = 20          # the stream spans the kills and the broker restart


class GatewayProcess:
    """``gateway run`` as a child process, its log in a file."""

    def __init__(self, config: pathlib.Path, data_dir: pathlib.Path, logs: pathlib.Path) -> None:
        self.config, self.data_dir, self.logs = config, data_dir, logs
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.log_path = self.logs / f"gateway-{self.starts}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--config", str(self.config),
             "--data-dir", str(self.data_dir)],
            stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_connected(self, times: int = 1, timeout: float = 30) -> None:
        """Until this process has logged ``times`` connections to the broker."""
        deadline = time.monotonic() + timeout
        while self.log().count("connected to") < times:
            if self.proc.poll() is not None:
                raise AssertionError(f"gateway exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"gateway did not connect within {timeout} s:\n{self.log()}")
            time.sleep(0.05)

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._log.close()

    def terminate(self) -> int:
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"gateway ignored SIGTERM:\n{self.log()}")
        self._log.close()
        return rc


def stored_points(data_dir: pathlib.Path, config_path: pathlib.Path) -> dict[tuple[str, int], object]:
    from gateway.config import load_file
    from gateway.store import Store

    async def read():
        store = Store(str(data_dir), load_file(config_path).store)
        await store.open()
        try:
            columns = await store.scan("raw", measurement="dur")
        finally:
            await store.close()
        return {(c.key, ts): v for c in columns for ts, v in zip(c.timestamps, c.values)}

    return asyncio.run(read())


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
