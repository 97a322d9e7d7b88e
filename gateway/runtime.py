"""The asyncio runtime: components started in dependency order, stopped in reverse.

A :class:`Component` owns its tasks. ``start()`` returns once the component is serving (its
long-running work goes in tasks made with :meth:`Component.spawn`); ``stop()`` cancels and awaits
them and flushes what must be flushed. ``health()`` returns a JSON-able snapshot for the status
page and must be cheap and thread-safe (the web server calls it from its own thread).

The :class:`Supervisor` runs the components, handles SIGTERM/SIGINT, and speaks the systemd
notify protocol when ``NOTIFY_SOCKET`` is set (READY=1, STATUS=, WATCHDOG=1 at half of
``WATCHDOG_USEC``, STOPPING=1).

Failure policy: a component whose task crashes, or that stops being :meth:`Component.alive`
(the store's commit thread died, say), stops the whole process with a non-zero status, and the
service manager restarts it (systemd's ``Restart=on-failure``, limited by its start limit). The
watchdog is fed only while every component is alive and the event loop runs the feeding task,
so a gateway that hangs is restarted too. Nothing is restarted in-process: a half-dead process
with a fresh task on top of broken state is harder to trust than a clean start with recovery.

SIGHUP is logged and ignored: the configuration is read once at start (``systemctl restart``
applies a new one), and a terminal hang-up must not kill the daemon.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from gateway.clock import WallClock

if TYPE_CHECKING:
    from gateway.config.model import Config

log = logging.getLogger("gateway.runtime")

#: How long a graceful shutdown may take in total before the process gives up on stragglers.
SHUTDOWN_BUDGET_S = 4.5
#: Seconds between liveness checks of the components when no systemd watchdog sets the pace.
HEALTH_CHECK_S = 5.0


class Component:
    """Base of every long-running part of the gateway (store, readers, web server, ...)."""

    #: Name used in logs and task names, e.g. ``reader:mqtt`` -> ``gateway[reader:mqtt].receive``.
    name: str = "component"

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task] = set()
        self.started_at: float | None = None
        #: Called with (component, task, exception) when one of its tasks crashes; the
        #: supervisor sets it to stop the process.
        self.on_crash: Callable[["Component", asyncio.Task, BaseException], None] | None = None

    def spawn(self, coro: Awaitable, what: str) -> asyncio.Task:
        """Starts a task owned by this component; a crash is logged and reported to on_crash."""
        task = asyncio.get_running_loop().create_task(coro, name=f"gateway[{self.name}].{what}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        log.error("%s failed: %r", task.get_name(), exc, exc_info=exc)
        if self.on_crash is not None:
            self.on_crash(self, task, exc)

    def alive(self) -> bool:
        """False once the component can no longer do its work (idle is alive). Cheap; called
        from the event loop every few seconds."""
        return True

    async def start(self, context: "Context") -> None:
        self.started_at = time.time()

    async def stop(self) -> None:
        """Cancels and awaits the component's tasks. Safe to call twice."""
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def health(self) -> dict[str, Any]:
        return {"name": self.name, "running": self.started_at is not None}


@dataclass
class Context:
    """What the supervisor hands each component: the config and the components started before it."""

    config: Config   # the gateway's loaded configuration
    data_dir: str
    components: dict[str, Component] = field(default_factory=dict)
    #: The time for points the gateway times itself (gateway/clock.py); the system's clock
    #: with no hold rule unless the daemon sets one.
    clock: WallClock = field(default_factory=lambda: WallClock(require_sync=False))

    def get(self, name: str) -> Component:
        return self.components[name]

    @property
    def store(self):
        return self.components["store"]


class SystemdNotifier:
    """sd_notify(3) over the datagram socket named by NOTIFY_SOCKET; does nothing without it."""

    def __init__(self, environ=os.environ) -> None:
        path = environ.get("NOTIFY_SOCKET")
        self._sock = None
        self._addr = None
        if path:
            self._addr = "\0" + path[1:] if path.startswith("@") else path
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        usec = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        wanted = usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid()))
        #: Seconds between WATCHDOG=1 pings (half the watchdog timeout), or None.
        self.watchdog_interval = int(usec) / 2e6 if wanted else None

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def notify(self, **state: str) -> None:
        if self._sock is None:
            return
        msg = "\n".join(f"{k}={v}" for k, v in state.items()).encode()
        try:
            self._sock.sendto(msg, self._addr)
        except OSError as e:
            log.warning("systemd notify failed: %s", e)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class Supervisor:
    """Starts components in order, runs until a stop signal, stops them in reverse order."""

    def __init__(self, context: Context, factories: list[Callable[[Context], Component]],
                 notifier: SystemdNotifier | None = None) -> None:
        self.context = context
        self.factories = factories
        self.notifier = notifier or SystemdNotifier()
        self.started: list[Component] = []
        self._stop = asyncio.Event()
        #: Why the gateway stopped on its own (a crashed or dead component), or None.
        self.failure: str | None = None

    def request_stop(self) -> None:
        self._stop.set()

    def _fail(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason
            log.critical("%s: stopping the gateway", reason)
        self.request_stop()

    def _component_crashed(self, component: Component, task: asyncio.Task,
                           exc: BaseException) -> None:
        self._fail(f"{task.get_name()} failed: {exc!r}")

    @staticmethod
    def _hangup() -> None:
        log.warning("SIGHUP ignored: the configuration is read at start; restart the gateway "
                    "to apply a changed one")

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, self._hangup)
        monitor = None
        try:
            for factory in self.factories:
                component = factory(self.context)
                log.info("starting %s", component.name)
                self.context.components[component.name] = component
                component.on_crash = self._component_crashed
                await component.start(self.context)
                self.started.append(component)
                if self._stop.is_set():
                    break
            names = ", ".join(c.name for c in self.started)
            log.info("gateway ready (%s)", names)
            self.notifier.notify(READY="1", STATUS=f"running: {names}")
            monitor = loop.create_task(self._monitor(), name="gateway[supervisor].monitor")
            await self._stop.wait()
            log.info("stopping")
        finally:
            self.notifier.notify(STOPPING="1", STATUS=f"stopping: {self.failure}"
                                 if self.failure else "stopping")
            if monitor is not None:
                monitor.cancel()
            await self._stop_all()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            self.notifier.close()

    async def _stop_all(self) -> None:
        deadline = time.monotonic() + SHUTDOWN_BUDGET_S
        for component in reversed(self.started):
            left = max(0.1, deadline - time.monotonic())
            try:
                await asyncio.wait_for(component.stop(), timeout=left)
                log.info("stopped %s", component.name)
            except asyncio.TimeoutError:
                log.error("%s did not stop within the shutdown budget", component.name)
            except Exception:
                log.exception("%s failed while stopping", component.name)
        self.started.clear()

    async def _monitor(self) -> None:
        """Checks that every component is alive; feeds the systemd watchdog only then."""
        interval = self.notifier.watchdog_interval or HEALTH_CHECK_S
        while True:
            dead = [c.name for c in self.started if not c.alive()]
            if dead:
                self._fail(f"{', '.join(dead)} not alive")
                return
            if self.notifier.watchdog_interval:
                self.notifier.notify(WATCHDOG="1")
            await asyncio.sleep(interval)
