"""A live `gateway run` with the HTTP API on a free loopback port, tokens made by the CLI."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

STARTUP_S = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args, data_dir, stdin=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway", *args, "--data-dir", str(data_dir)],
                          input=stdin, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "GATEWAY_HW": "emulated"})


def create_token(data_dir, scope: str) -> str:
    done = cli("token", "create", "--scope", scope, data_dir=data_dir)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@dataclass
class Gateway:
    port: int
    data_dir: str
    log_path: str
    proc: subprocess.Popen
    tokens: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: bytes | str | None = None,
                headers: dict | None = None, token: str | None = None):
        """(status, headers, body bytes) of one request on a new connection."""
        headers = dict(headers or {})
        if token is not None:
            headers["Authorization"] = f"Token {token}"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            conn.close()

    def metric(self, name: str, **labels) -> float | None:
        """The value of one sample on /metrics (labels must match exactly), or None."""
        status, _, body = self.request("GET", "/metrics", token=self.tokens["query"])
        assert status == 200, body
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in body.decode().splitlines():
            m = re.fullmatch(rf"{re.escape(name)}(?:\{{(.*)\}})? (\S+)", line)
            if m and ",".join(sorted((m.group(1) or "").split(","))) == want:
                return float(m.group(2))
        return None

    def json(self, path: str, token: str | None = None):
        status, _, body = self.request("GET", path, token=token)
        assert status == 200, (path, status, body)
        return json.loads(body)

    def write(self, lines: str | bytes, bucket: str = "raw", precision: str = "ns",
              token: str | None = None, headers: dict | None = None):
        return self.request("POST", f"/api/v2/write?org=o&bucket={bucket}&precision={precision}",
                            body=lines, headers=headers, token=token or self.tokens["write"])

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_gateway(tmp_path, extra_config: str = "", scopes=("write", "query", "admin"),
                  port: int | None = None, timeout: str = "3s") -> Gateway:
    port = port or free_port()
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    config = tmp_path / "gateway.toml"
    config.write_text(f'[http]\nlisten = "127.0.0.1:{port}"\ntimeout = "{timeout}"\n{extra_config}\n')
    tokens = {scope: create_token(data_dir, scope) for scope in scopes}
    log_path = str(tmp_path / "gateway.log")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--config", str(config), "--data-dir",
             str(data_dir), "--log-level", "debug"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "GATEWAY_HW": "emulated"})
    gw = Gateway(port, str(data_dir), log_path, proc, tokens)
    deadline = time.monotonic() + STARTUP_S
    while True:
        assert proc.poll() is None, gw.log()
        try:
            if gw.request("GET", "/health")[0] == 200:
                return gw
        except OSError:
            pass
        if time.monotonic() > deadline:
            gw.stop()
            raise AssertionError("the gateway did not answer /health:\n" + gw.log())
        time.sleep(0.2)
