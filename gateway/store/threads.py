"""The store's worker threads, and how the event loop hands work to them.

Three single threads, each for one kind of blocking work, so that one kind never waits behind
another: the *store thread* owns the C heads and every file write (calls on it run in order,
which is what keeps the heads consistent); the *sync thread* runs fsync/fdatasync, so that a
slow sync does not stop the next batch being taken; the *read thread* reads ring blocks for
queries, so that a long scan does not delay a commit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Callable, TypeVar

T = TypeVar("T")


class StoreThreads:
    def __init__(self) -> None:
        self._store = concurrent.futures.ThreadPoolExecutor(1, "gateway-store")
        self._sync = concurrent.futures.ThreadPoolExecutor(1, "gateway-store-sync")
        self._read = concurrent.futures.ThreadPoolExecutor(1, "gateway-store-read")

    async def on_store_thread(self, fn: Callable[..., T], *args) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._store, fn, *args)

    async def on_sync_thread(self, fn: Callable[..., T], *args) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._sync, fn, *args)

    async def on_read_thread(self, fn: Callable[..., T], *args) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._read, fn, *args)

    def shutdown(self) -> None:
        """Waits for the work already handed over, then ends the threads."""
        for ex in (self._store, self._sync, self._read):
            ex.shutdown(wait=True)
