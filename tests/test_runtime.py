"""Supervisor: start order, reverse stop, signals, and the systemd notify protocol."""

import asyncio
import os
import signal
import socket

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
