"""The store as code on another thread sees it: the calls a query or a status snapshot makes,
each run on the event loop the store lives on.

The work done with what the store returns (Flux functions, filters, window folds, tables,
CSV, sparklines) then runs on the calling thread, and the loop that ingest needs only serves
the reads. A series is still read batch by batch (:meth:`Store.stream_series`): one batch in
flight per series, however long the range.
"""

from __future__ import annotations

from typing import Any, AsyncGenerator, AsyncIterator

from gateway.aggregate import FoldedMany
from gateway.bridge import LoopBridge

#: Batches of a series one step on the loop takes (at most this many are in flight).
BATCHES_PER_STEP = 2
#: Points one step of :meth:`StoreProxy.stream_many` gathers before it returns (plus at most
#: one batch of the store's stream).
STEP_POINTS = 65536


class StoreProxy:
    """The read calls of :class:`gateway.store.Store` (and ``write``, for ``to()`` in tasks)
    for a thread that is not the loop's. A loop that does not answer within the bridge's
    timeout raises :class:`gateway.bridge.LoopUnavailable`."""

    def __init__(self, store, bridge: LoopBridge) -> None:
        self._store = store
        self._bridge = bridge

    def bucket(self, name: str):
        return self._bridge.call(self._store.bucket, name)

    def series(self, bucket: str = "raw", measurement: str | None = None, tags=None,
               field: str | None = None) -> list:
        return self._bridge.call(self._store.series, bucket, measurement, tags, field)

    async def stream_series(self, info, bucket: str = "raw", start: int | None = None,
                            stop: int | None = None,
                            batch_points: int | None = None) -> AsyncIterator[tuple]:
        batches = self._store.stream_series(info, bucket, start, stop, batch_points)
        done = False
        try:
            while not done:
                got, done = self._bridge.run(_take, batches, BATCHES_PER_STEP)
                for batch in got:
                    yield batch
        finally:
            if not done:
                self._bridge.run(batches.aclose)

    async def stream_many(self, infos: list, bucket: str = "raw", start: int | None = None,
                          stop: int | None = None) -> AsyncIterator[tuple]:
        """(info, timestamps, values) batches of each series in turn, in time order within a
        series (a series without points in the range yields nothing). One step on the loop
        reads several series while they are small, up to :data:`STEP_POINTS` points: a page
        of a hundred sparklines costs a few steps, not one per series."""
        cursor = _SeriesCursor(self._store, infos, bucket, start, stop)
        done = False
        try:
            while not done:
                got, done = self._bridge.run(cursor.take, STEP_POINTS)
                for item in got:
                    yield item
        finally:
            if not done:
                self._bridge.run(cursor.close)

    async def fold_windows(self, infos: list, bucket: str, start: int, stop: int, spec,
                           max_windows: int) -> FoldedMany:
        return self._bridge.run(self._store.fold_windows, infos, bucket, start, stop, spec,
                                max_windows)

    async def last(self, key: str, bucket: str = "raw") -> tuple[int, Any] | None:
        return self._bridge.run(self._store.last, key, bucket)

    async def write(self, batch, bucket: str = "raw", sender=None):
        return self._bridge.run(self._store.write, batch, bucket, True, sender)


async def _take(batches: AsyncIterator, n: int) -> tuple[list, bool]:
    """Up to ``n`` batches, and whether the stream ended (a series that fits in one batch,
    the usual case, then costs one step on the loop)."""
    got: list = []
    try:
        while len(got) < n:
            got.append(await batches.__anext__())
    except StopAsyncIteration:
        return got, True
    return got, False


class _SeriesCursor:
    """Where :meth:`StoreProxy.stream_many` is in its series (used on the loop only)."""

    def __init__(self, store, infos: list, bucket: str, start, stop) -> None:
        self.store, self.infos, self.bucket, self.start, self.stop = store, infos, bucket, start, stop
        self.i = 0
        self.current: AsyncGenerator | None = None

    async def take(self, budget: int) -> tuple[list, bool]:
        got, n = [], 0
        while self.i < len(self.infos):
            info = self.infos[self.i]
            if self.current is None:
                self.current = self.store.stream_series(info, self.bucket, self.start, self.stop)
            try:
                ts, values = await self.current.__anext__()
            except StopAsyncIteration:
                self.current = None
                self.i += 1
                continue
            got.append((info, ts, values))
            n += len(ts)
            if n >= budget:
                return got, False
        return got, True

    async def close(self) -> None:
        if self.current is not None:
            await self.current.aclose()
