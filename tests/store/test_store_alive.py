"""Store.alive(): what the supervisor asks before it feeds the systemd watchdog."""

from __future__ import annotations

import asyncio
import threading
import time

from gateway.store import Store
from gateway.store.commit import COMMIT_STALL_S

from store_support import T0, make_batch


def test_an_idle_store_is_alive_and_a_stuck_commit_is_not(data_dir, config):
    async def main():
        store = Store(data_dir, config)
        await store.open()
        try:
            await asyncio.sleep(0)
            idle = store.alive(now=time.monotonic() + 10 * COMMIT_STALL_S)
            # The store thread stops answering (an SD card that hangs in a write): the commit
            # of the next write cannot finish.
            release = threading.Event()
            blocker = asyncio.ensure_future(store.threads.on_store_thread(release.wait))
            write = asyncio.ensure_future(store.write(make_batch([("m", {}, "f", T0, 1.0)])))
            for _ in range(2000):   # until the commit has begun (it then waits on the thread)
                later = store.alive(now=time.monotonic() + COMMIT_STALL_S + 1)
                if not later:
                    break
                await asyncio.sleep(0.005)
            soon = store.alive()
            release.set()
            await blocker
            await write
            after = store.alive(now=time.monotonic() + 10 * COMMIT_STALL_S)
            return idle, soon, later, after
        finally:
            await store.close()

    idle, soon, later, after = asyncio.run(main())
    assert idle and soon and not later and after
