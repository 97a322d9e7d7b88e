"""Supervisor: start order, reverse stop, signals, and the systemd notify protocol."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest

from gateway.runtime import Component, Context, Supervisor, SystemdNotifier


class Recorder(Component):
    def __init__(self, name, log, fail_start=False):
        super().__init__()
        self.name, self.log, self.fail_start = name, log, fail_start

    async def start(self, context):
        await super().start(context)
        if self.fail_start:
            raise RuntimeError(f"{self.name} cannot start")
        self.log.append(f"start {self.name}")
        self.spawn(asyncio.sleep(3600), "idle")

    async def stop(self):
        await super().stop()
        self.log.append(f"stop {self.name}")


def run_supervisor(factories, stop_after=0.05, notifier=None):
    async def main():
        sup = Supervisor(Context(config=None, data_dir="/nonexistent"), factories, notifier)
        asyncio.get_running_loop().call_later(stop_after, sup.request_stop)
        await sup.run()
        return sup
    return asyncio.run(main())


def test_components_start_in_order_and_stop_in_reverse():
    log = []
    run_supervisor([lambda c, n=n: Recorder(n, log) for n in ("store", "reader:a", "web")])
    assert log == ["start store", "start reader:a", "start web", "stop web", "stop reader:a", "stop store"]


def test_a_failed_start_stops_what_already_started():
    log = []
    with pytest.raises(RuntimeError, match="b cannot start"):
        run_supervisor([lambda c: Recorder("a", log), lambda c: Recorder("b", log, fail_start=True),
                        lambda c: Recorder("c", log)])
    assert log == ["start a", "stop a"]


def test_sigterm_stops_gracefully():
    log = []

    async def main():
        sup = Supervisor(Context(config=None, data_dir="/x"), [lambda c: Recorder("a", log)])
        asyncio.get_running_loop().call_later(0.05, os.kill, os.getpid(), signal.SIGTERM)
        await sup.run()
    asyncio.run(main())
    assert log == ["start a", "stop a"]


def test_systemd_notify_ready_watchdog_stopping(tmp_path):
    path = str(tmp_path / "notify.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(2)
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "40000"})
    assert notifier.watchdog_interval == pytest.approx(0.02)
    run_supervisor([lambda c: Recorder("a", [])], stop_after=0.15, notifier=notifier)
    messages = []
    server.setblocking(False)
    while True:
        try:
            messages.append(server.recv(4096).decode())
        except BlockingIOError:
            break
    server.close()
    assert messages[0].startswith("READY=1\nSTATUS=running: a")
    assert sum(m == "WATCHDOG=1" for m in messages) >= 3
    assert messages[-1] == "STOPPING=1\nSTATUS=stopping"


def test_notifier_without_socket_is_silent():
    n = SystemdNotifier({})
    assert not n.enabled and n.watchdog_interval is None
    n.notify(READY="1")


def test_watchdog_for_another_pid_is_ignored():
    n = SystemdNotifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})
    assert n.watchdog_interval is None


class Crasher(Component):
    """A component whose background task fails once started."""

    name = "crasher"

    async def start(self, context):
        await super().start(context)

        async def work():
            await asyncio.sleep(0)
            raise RuntimeError("commit loop broke")
        self.spawn(work(), "work")


class Dead(Component):
    """A component that starts fine and reports itself dead (its worker thread is gone)."""

    name = "dead"

    def alive(self):
        return False


def test_a_crashed_component_task_stops_the_gateway_with_a_failure():
    log = []

    async def main():
        sup = Supervisor(Context(config=None, data_dir="/x"),
                         [lambda c: Recorder("a", log), lambda c: Crasher()])
        # returns on its own: no stop is requested from outside (the bound only ends a hang)
        await asyncio.wait_for(sup.run(), 60)
        return sup
    sup = asyncio.run(main())
    assert sup.failure == "gateway[crasher].work failed: RuntimeError('commit loop broke')"
    assert log == ["start a", "stop a"]


def test_a_dead_component_stops_the_gateway_and_starves_the_watchdog(tmp_path):
    path = str(tmp_path / "notify.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "40000"})

    async def main():
        sup = Supervisor(Context(config=None, data_dir="/x"), [lambda c: Dead()], notifier)
        await asyncio.wait_for(sup.run(), 60)
        return sup
    sup = asyncio.run(main())
    server.setblocking(False)
    messages = []
    while True:
        try:
            messages.append(server.recv(4096).decode())
        except BlockingIOError:
            break
    server.close()
    assert sup.failure == "dead not alive"
    assert "WATCHDOG=1" not in messages
    assert messages[-1] == "STOPPING=1\nSTATUS=stopping: dead not alive"


def test_sighup_is_logged_and_ignored():
    """In a child process: before SIGHUP was handled it killed the process."""
    script = textwrap.dedent("""
        import asyncio, logging, os, signal
        from gateway.runtime import Component, Context, Supervisor
        logging.basicConfig(level=logging.INFO)

        class Idle(Component):
            name = "idle"

        async def main():
            sup = Supervisor(Context(config=None, data_dir="/x"), [lambda c: Idle()])
            loop = asyncio.get_running_loop()
            loop.call_soon(os.kill, os.getpid(), signal.SIGHUP)
            loop.call_later(0.2, sup.request_stop)
            await sup.run()
            print("failure:", sup.failure)

        asyncio.run(main())
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "failure: None"
    assert "SIGHUP ignored" in proc.stderr
