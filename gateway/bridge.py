"""The one way request threads reach the event loop (and the store that lives on it).

Every call is scheduled with :func:`asyncio.run_coroutine_threadsafe` and waited for with a
timeout in the calling thread, so a worker thread never touches a loop object, and a loop that
is stopping or too busy turns into :class:`LoopUnavailable` (503) instead of a stuck worker.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from typing import Any, Awaitable, Callable


#: Seconds between checks, while waiting for the loop, that it has not closed.
CLOSED_CHECK_S = 0.5


class LoopUnavailable(RuntimeError):
    """The event loop did not answer in time or is shutting down."""


class LoopBridge:
    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self._loop = loop
        self.timeout = timeout

    def run(self, coro_fn: Callable[..., Awaitable], *args, timeout: float | None = None) -> Any:
        """Runs ``await coro_fn(*args)`` on the loop and returns its result (or raises)."""
        return self._wait(self._submit(coro_fn(*args)), timeout)

    def call(self, fn: Callable[..., Any], *args, timeout: float | None = None) -> Any:
        """Runs the plain function ``fn(*args)`` on the loop's thread (state that only the loop
        changes is read there, between two of its steps)."""
        async def on_loop():
            return fn(*args)
        return self._wait(self._submit(on_loop()), timeout)

    def _submit(self, coro) -> concurrent.futures.Future:
        try:
            return asyncio.run_coroutine_threadsafe(coro, self._loop)
        except RuntimeError as e:  # the loop is closed
            coro.close()
            raise LoopUnavailable(f"the gateway is stopping ({e})") from None

    def _wait(self, fut: concurrent.futures.Future, timeout: float | None) -> Any:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            try:
                # In steps: a loop that closes meanwhile never runs the call, and the caller
                # (a query thread at shutdown) must not wait out the whole timeout for it.
                return fut.result(max(0.0, min(CLOSED_CHECK_S, deadline - time.monotonic())))
            except concurrent.futures.TimeoutError:
                if self._loop.is_closed():
                    raise LoopUnavailable("the gateway is stopping") from None
                if time.monotonic() >= deadline:
                    fut.cancel()
                    raise LoopUnavailable("the gateway did not answer in time") from None
            except concurrent.futures.CancelledError:
                raise LoopUnavailable("the gateway is stopping") from None
