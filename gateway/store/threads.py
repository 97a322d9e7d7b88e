"""The store's worker threads, and how the event loop hands work to them.

Three single threads, each for one kind of blocking work, so that one kind never waits behind
another: the *store thread* owns the C heads and every file write (calls on it run in order,
which is what keeps the heads consistent); the *sync thread* runs fsync/fdatasync, so that a
slow sync does not stop the next batch being taken; the *read thread* reads ring blocks for
queries, so that a long scan does not delay a commit. Window folds of many series (C code
that releases the GIL) are split over :data:`FOLD_THREADS` threads of their own, so that a
query over many series uses the board's cores (four on a Pi 3, 4 or 5 and a Zero 2).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from typing import Callable, TypeVar

T = TypeVar("T")
#: Threads that fold series' blocks in parallel (:meth:`StoreThreads.on_fold_threads`): one a
#: core, at most four (each holds a run of decoded points, 96 KiB, while it folds).
FOLD_THREADS = max(1, min(4, os.cpu_count() or 1))


class StoreThreads:
    def __init__(self) -> None:
        self._store = concurrent.futures.ThreadPoolExecutor(1, "gateway-store")
        self._sync = concurrent.futures.ThreadPoolExecutor(1, "gateway-store-sync")
        self._read = concurrent.futures.ThreadPoolExecutor(1, "gateway-store-read")
        self._fold = concurrent.futures.ThreadPoolExecutor(FOLD_THREADS, "gateway-store-fold")

    async def on_store_thread(self, fn: Callable[..., T], *args) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._store, fn, *args)

    def to_store_thread(self, fn: Callable[..., T], *args) -> concurrent.futures.Future[T]:
        """``fn(*args)`` on the store thread, in order with the calls before it; a future that
        worker threads may wait on (the event loop awaits :meth:`on_store_thread`)."""
        return self._store.submit(fn, *args)

    async def on_sync_thread(self, fn: Callable[..., T], *args) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._sync, fn, *args)

    async def on_read_thread(self, fn: Callable[..., T], *args) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._read, fn, *args)

    async def on_fold_threads(self, fn: Callable[..., list], parts: list, *args) -> list:
        """``fn(part, *args)`` for each part at once on the fold threads (a part may be one
        queue that they share); their results (lists) joined in the order of the parts."""
        loop = asyncio.get_running_loop()
        got = await asyncio.gather(*(loop.run_in_executor(self._fold, fn, part, *args)
                                     for part in parts))
        joined = [x for part in got for x in part]
        # A worker thread drops its last job's future (and so its result) only when it next
        # runs, maybe after the caller is done with the result: the lists are emptied here.
        for part in got:
            part.clear()
        return joined

    def shutdown(self) -> None:
        """Waits for the work already handed over, then ends the threads."""
        for ex in (self._store, self._sync, self._read, self._fold):
            ex.shutdown(wait=True)
