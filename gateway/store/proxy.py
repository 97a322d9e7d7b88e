"""The store as code on another thread sees it: the calls a query or a status snapshot makes,
each run on the event loop the store lives on.

The work done with what the store returns (Flux functions, filters, window folds, tables,
CSV, sparklines) then runs on the calling thread, and the loop that ingest needs only serves
the reads. A series is still read batch by batch (:meth:`Store.stream_series`): one batch in
flight per series, however long the range.
"""

from __future__ import annotations

from typing import Any, AsyncIterator

from gateway.bridge import LoopBridge


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
        try:
            while True:
                got = self._bridge.run(_next_or_none, batches)
                if got is None:
                    return
                yield got
        finally:
            self._bridge.run(batches.aclose)

    async def last(self, key: str, bucket: str = "raw") -> tuple[int, Any] | None:
        return self._bridge.run(self._store.last, key, bucket)

    async def write(self, batch, bucket: str = "raw"):
        return self._bridge.run(self._store.write, batch, bucket)


async def _next_or_none(batches: AsyncIterator):
    # StopAsyncIteration does not cross run_coroutine_threadsafe cleanly: None ends the stream
    # (stream_series never yields None).
    try:
        return await batches.__anext__()
    except StopAsyncIteration:
        return None
