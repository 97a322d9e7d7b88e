"""The one way request threads reach the event loop (and the store that lives on it).

Every call is scheduled with :func:`asyncio.run_coroutine_threadsafe` and waited for with a
timeout in the calling thread, so a worker thread never touches a loop object, and a loop that
is stopping or too busy turns into :class:`LoopUnavailable` (503) instead of a stuck worker.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any, Awaitable, Callable


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
        try:
            return fut.result(self.timeout if timeout is None else timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise LoopUnavailable("the gateway did not answer in time") from None
        except concurrent.futures.CancelledError:
            raise LoopUnavailable("the gateway is stopping") from None
