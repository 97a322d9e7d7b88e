"""Suite-wide policy: in CI (``CI`` set) a skipped test fails the run, and property tests draw
the same examples every run.

`make test` installs everything the suite needs, so a skip there means a missing install step
or a broken fixture, which must not pass as green. A property test that finds a new example on
a developer's machine is a bug report; in CI the same inputs make a red run mean a change.
"""

import inspect
import os
import time

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_sessionfinish(session, exitstatus):
    if not os.environ.get("CI"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped and exitstatus == 0:
        for report in skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
            reporter.write_line(f"skipped in CI: {report.nodeid}: {reason}", red=True)
        session.exitstatus = 1


@pytest.fixture
def serve_store():
    """``serve_store(data_dir, store_config)`` starts a store and its control socket (as
    ``gateway run`` does) on a thread and loop of their own, returns ``(store, loop)``, and
    stops them after the test."""
    import asyncio
    import threading

    from gateway.store import Store
    from gateway.store.control import ControlServer

    running = []

    def start(data_dir: str, config):
        loop = asyncio.new_event_loop()
        store = Store(data_dir, config)
        control = ControlServer(store)
        ready = threading.Event()

        def serve():
            asyncio.set_event_loop(loop)
            loop.run_until_complete(store.start())
            loop.run_until_complete(control.start())
            ready.set()
            loop.run_forever()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        assert ready.wait(30)
        running.append((store, control, loop, thread))
        return store, loop

    yield start
    for store, control, loop, thread in running:
        asyncio.run_coroutine_threadsafe(control.stop(), loop).result(30)
        asyncio.run_coroutine_threadsafe(store.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


async def wait_until(predicate, what: str = "the condition", timeout: float = 10.0) -> None:
    """Polls ``predicate`` (a function, or one returning an awaitable) until it is true; fails
    naming ``what`` after ``timeout`` seconds. Tests wait on what they then assert, never on
    a fixed sleep, so a slow or loaded machine only makes them slower."""
    import asyncio

    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.fixture
def until():
    """:func:`wait_until`: ``await until(predicate, what, timeout=10.0)``."""
    return wait_until
