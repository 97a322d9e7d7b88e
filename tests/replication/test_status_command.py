"""``gateway replication status`` against a running daemon (through its control socket) and
against a stopped one (from the store alone)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from replication_support import RECENT_NS

pytestmark = pytest.mark.integration

CONFIG = """\
[gateway]
data_dir = "{data}"
[readers]
[[replication]]
name = "vm"
kind = "influxdb_v2"
url = "{url}"
org = "o"
bucket = "gw"
flush_interval = "1s"
"""


def gateway(*args, **kw):
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True,
                          text=True, timeout=120, **kw)


def test_status_of_a_running_and_a_stopped_daemon(tmp_path, victoria):
    config = tmp_path / "gw.toml"
    config.write_text(CONFIG.format(data=tmp_path / "data", url=victoria.url))
    daemon = subprocess.Popen([sys.executable, "-m", "gateway", "run", "--config", str(config)],
                              stderr=subprocess.PIPE, text=True)
    try:
        for line in daemon.stderr:
            if "gateway ready" in line:
                break
        lines = "".join(f"env,room=r{i % 3} temp={i}.5 {RECENT_NS + i * 10**9}\n" for i in range(30))
        wrote = gateway("write", "--config", str(config), "-", input=lines)
        assert wrote.returncode == 0, wrote.stderr
        while True:
            out = gateway("replication", "status", "--config", str(config), "--json")
            assert out.returncode == 0, out.stderr
            stream = json.loads(out.stdout)["vm"]
            if stream["counters"].get("points_sent", 0) >= 30:
                break
            time.sleep(0.2)
        assert stream["kind"] == "influxdb_v2" and stream["last_error"] is None
        assert set(stream["buckets"]) == {"raw", "rollup"}
        text = gateway("replication", "status", "--config", str(config))
        assert text.stdout.startswith(f"vm (influxdb_v2 -> {victoria.url}): ")
        assert "sent 30 points" in text.stdout
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)
    stopped = gateway("replication", "status", "--config", str(config), "--json")
    assert stopped.returncode == 0, stopped.stderr
    assert json.loads(stopped.stdout)["vm"]["state"] == "not running"
