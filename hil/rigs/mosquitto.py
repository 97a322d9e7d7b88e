"""A mosquitto of a rig's (or a test's) own: loopback, a free port, persistence in its directory,
stopped by PID; and the password files of the gateway's LAN endpoint, hashed by mosquitto's tool.

The MQTT reader's tests and the HIL rigs both use it, so there is one way to run a broker here.
"""

from __future__ import annotations

import os
import pathlib
import pwd
import shutil
import signal
import socket
import subprocess
import time

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"

#: Broker settings the gateway's acks-after-durable-write flow needs (also in the README).
BROKER_SETTINGS = """\
max_queued_messages 0
max_queued_bytes 0
max_inflight_messages 0
persistent_client_expiration 7d
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    """One mosquitto process; ``restart()`` keeps its port and persistence directory."""

    def __init__(self, directory: pathlib.Path, extra: str = "",
                 listener_options: str = "allow_anonymous true\n",
                 settings: str = BROKER_SETTINGS) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.host = "127.0.0.1"
        self.config_path = self.dir / "mosquitto.conf"
        self.log_path = self.dir / "mosquitto.log"
        self.extra = extra
        self.listener_options = listener_options
        self.settings = settings
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def write_config(self) -> None:
        user = pwd.getpwuid(os.getuid()).pw_name
        self.config_path.write_text(
            f"listener {self.port} 127.0.0.1\n"
            + self.listener_options +
            f"user {user}\n"
            + self.settings +
            "persistence true\n"
            f"persistence_location {self.dir}/\n"
            "persistence_file mosquitto.db\n"
            f"log_dest file {self.log_path}\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            + self.extra)

    def start(self) -> None:
        self.write_config()
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.config_path)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace")
                log = self.log_path.read_text() if self.log_path.exists() else ""
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: {err}{log}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on {self.host}:{self.port} within 10 s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stops the broker by its PID (SIGTERM saves the persistence file first)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc.stderr.close()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


def password_file(directory: pathlib.Path, users: dict[str, str]) -> pathlib.Path:
    """A mosquitto_passwd file (hashed by mosquitto's own tool) for ``users``."""
    path = directory / "lan.passwd"
    path.write_text("".join(f"{u}:{pw}\n" for u, pw in users.items()))
    subprocess.run([shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd", "-U", str(path)],
                   check=True)
    return path
