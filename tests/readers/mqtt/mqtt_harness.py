"""Test harness of the MQTT reader: a real mosquitto (the HIL rigs' own, hil/rigs/mosquitto.py:
loopback, free port, persistence in a temp dir, stopped by PID), a publisher, and the store plus
readers running in the test's loop."""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

from hil.rigs.mosquitto import BROKER_SETTINGS, MOSQUITTO, Mosquitto, free_port, password_file  # noqa: F401

#: A start for test timestamps an hour ago: well within any bucket's retention (the store
#: refuses points older than that).
RECENT_NS = (time.time_ns() // 1_000_000_000 - 3600) * 1_000_000_000


class Publisher:
    """A paho publisher (QoS 1 messages survive its reconnects: paho resends them)."""

    def __init__(self, broker: Mosquitto, client_id: str = "test-publisher") -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=False)
        self.acked = 0
        self.client.on_publish = self._on_publish
        self.client.reconnect_delay_set(0.1, 1)
        self.client.max_inflight_messages_set(200)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self.acked += 1

    def publish(self, topic: str, payload: bytes | str, qos: int = 1):
        return self.client.publish(topic, payload, qos=qos)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


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

    def wait_connected(self, times: int = 1, timeout: float = 30, line: str = "connected to") -> None:
        """Until this process has logged ``line`` (a connection to the broker) ``times`` times."""
        deadline = time.monotonic() + timeout
        while self.log().count(line) < times:
            if self.proc.poll() is not None:
                raise AssertionError(f"gateway exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"gateway did not connect within {timeout} s:\n{self.log()}")
            time.sleep(0.05)

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._log.close()

    def kill_if_running(self) -> None:
        """After a failed test: the child must not outlive it."""
        if self.proc is not None and self.proc.poll() is None:
            self.kill()

    def terminate(self) -> int:
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"gateway ignored SIGTERM:\n{self.log()}")
        self._log.close()
        return rc


def stored_points(data_dir: pathlib.Path, config_path: pathlib.Path,
                  measurement: str = "dur") -> dict[tuple[str, int], object]:
    from gateway.config import load_file
    from gateway.store import Store

    async def read():
        store = Store(str(data_dir), load_file(config_path).store)
        await store.open()
        try:
            columns = await store.scan("raw", measurement=measurement)
        finally:
            await store.close()
        return {(c.key, ts): v for c in columns for ts, v in zip(c.timestamps, c.values)}

    return asyncio.run(read())


async def start_gateway(config_text: str, data_dir: pathlib.Path):
    """Store and MQTT reader(s) of ``config_text`` running in this loop; returns (store, readers)."""
    from gateway.config import load_text
    from gateway.readers.mqtt import create
    from gateway.runtime import Context
    from gateway.store import Store

    config = load_text(config_text)
    context = Context(config=config, data_dir=str(data_dir))
    store = Store(str(data_dir), config.store)
    context.components["store"] = store
    await store.start(context)
    readers = []
    for reader_config in config.readers["mqtt"]:
        reader = create(reader_config, context)
        await reader.start(context)
        readers.append(reader)
    return store, readers


async def stop_gateway(store, readers) -> None:
    for reader in reversed(readers):
        await reader.stop()
    await store.stop()


async def wait_for(predicate, timeout: float, what: str) -> None:
    import asyncio

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


def lan_config(broker: Mosquitto, port: int, passwd: pathlib.Path, extra: str = "",
               store: str = "") -> str:
    """A gateway with one MQTT reader on ``broker`` serving LAN devices on ``port``."""
    return f'''
{store}
[[readers.mqtt]]
server = "{broker.url}"
client_id = "gateway-lan"
reconnect_min = "100ms"
reconnect_max = "1s"
[readers.mqtt.listener]
listen = "127.0.0.1:{port}"
password_file = "{passwd}"
{extra}
[[readers.mqtt.subscriptions]]
topic = "lan/#"
format = "line"
'''


class RawClient:
    """A socket speaking MQTT byte by byte, for input no real client would send."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def closed_by_server(self, timeout: float = 10) -> bytes:
        """Reads until the server closes; returns what it sent. Fails if it stays open."""
        self.sock.settimeout(timeout)
        got = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return got
            if not chunk:
                return got
            got += chunk

    def read(self, n: int) -> bytes:
        got = b""
        while len(got) < n:
            chunk = self.sock.recv(n - len(got))
            if not chunk:
                raise AssertionError(f"connection closed after {got!r}")
            got += chunk
        return got

    def read_packet(self) -> bytes:
        """The body of the next packet (Remaining Length below 128 here)."""
        header = self.read(2)
        return self.read(header[1])

    def close(self) -> None:
        self.sock.close()


def mqtt_packet(kind: int, flags: int, body: bytes) -> bytes:
    """A packet as a client writes it (fixed header with the Remaining Length varint)."""
    n, length = len(body), bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        length.append(byte | (0x80 if n else 0))
        if not n:
            break
    return bytes((kind << 4 | flags,)) + bytes(length) + body


def mqtt_str(raw: bytes | str) -> bytes:
    raw = raw.encode() if isinstance(raw, str) else raw
    return len(raw).to_bytes(2, "big") + raw


def connect_packet(client_id: str, username: str | None = None, password: str | None = None,
                   version: int = 4, keepalive: int = 60, clean: bool = True,
                   properties: bytes = b"\x00") -> bytes:
    flags = (0x02 if clean else 0) | (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    body = mqtt_str("MQTT") + bytes((version, flags)) + keepalive.to_bytes(2, "big")
    if version == 5:
        body += properties
    body += mqtt_str(client_id)
    if username is not None:
        body += mqtt_str(username)
    if password is not None:
        body += mqtt_str(password)
    return mqtt_packet(1, 0, body)


def publish_packet(topic: bytes | str, payload: bytes, qos: int = 0, packet_id: int = 1,
                   version: int = 4, dup: bool = False) -> bytes:
    body = mqtt_str(topic) + (packet_id.to_bytes(2, "big") if qos else b"")
    if version == 5:
        body += b"\x00"
    return mqtt_packet(3, (0x08 if dup else 0) | qos << 1, body + payload)
