"""`gateway run` as systemd and `make run` start it: ready, stays up, exits 0 on SIGTERM with every
component stopped inside the supervisor's shutdown budget (its own log says when one is not)."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow


def start_gateway(tmp_path, *extra, env_extra=None):
    env = {**os.environ, "GATEWAY_HW": "emulated", **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-m", "gateway", "run", "--data-dir", str(tmp_path / "data"), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)


def test_runs_on_defaults_until_sigterm(tmp_path):
    sock_path = str(tmp_path / "notify")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(sock_path)
    notify.settimeout(60)
    proc = start_gateway(tmp_path, env_extra={"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "2000000"})
    try:
        first = notify.recv(4096).decode()
        assert first.startswith("READY=1"), first
        # Still up and healthy one watchdog period later: the next ping arrives.
        assert notify.recv(4096).decode() == "WATCHDOG=1"
        assert notify.recv(4096).decode() == "WATCHDOG=1"
        assert proc.poll() is None, proc.stderr.read()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        notify.close()
    err = proc.stderr.read()
    assert rc == 0, err
    # The budget is the supervisor's (4.5 s, under systemd's stop timeout); it logs every component
    # it had to abandon, which is what a slow stop looks like without timing the test itself.
    assert "did not stop within the shutdown budget" not in err, err
    assert "gateway ready" in err and "gateway stopped" in err
    assert "Traceback" not in err


@contextlib.contextmanager
def ready_gateway(tmp_path):
    """A `gateway run` that has logged "gateway ready"; killed on the way out if still running."""
    proc = start_gateway(tmp_path)
    try:
        lines = []
        while True:
            line = proc.stderr.readline()
            lines.append(line)
            if "gateway ready" in line or not line:
                break
        assert any("gateway ready" in l for l in lines), "".join(lines)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigint_also_stops_cleanly(tmp_path):
    with ready_gateway(tmp_path) as proc:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0


def test_commands_reach_the_running_daemon_through_its_control_socket(tmp_path):
    with ready_gateway(tmp_path) as proc:
        src = tmp_path / "in.lp"
        now = time.time_ns()
        src.write_text(f"probe,site=a v=1.5 {now}\n")
        data_dir = str(tmp_path / "data")
        write = subprocess.run([sys.executable, "-m", "gateway", "write", "--data-dir", data_dir,
                                str(src)], capture_output=True, text=True, timeout=60)
        assert write.returncode == 0, write.stderr
        export = subprocess.run([sys.executable, "-m", "gateway", "export", "--data-dir", data_dir,
                                 "--measurement", "probe"], capture_output=True, text=True,
                                timeout=60)
        assert export.returncode == 0, export.stderr
        assert export.stdout == f"probe,site=a v=1.5 {now}\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_the_daemon_waits_for_a_command_that_holds_the_store(tmp_path):
    from gateway.store.lock import DataDirLock

    store_dir = tmp_path / "data" / "store"
    store_dir.mkdir(parents=True)
    command = DataDirLock(str(store_dir / "LOCK"))   # as a direct `gateway write` holds it
    command.acquire()
    proc = start_gateway(tmp_path)
    try:
        while True:
            line = proc.stderr.readline()
            assert line, "the daemon ended instead of waiting for the store"
            if "waiting up to" in line:
                break
        command.release()
        while True:
            line = proc.stderr.readline()
            assert line, "the daemon ended instead of starting"
            if "gateway ready" in line:
                break
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        command.release()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
