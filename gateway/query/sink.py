"""``to()``: tables written into a bucket as points (one per row with a non-null _value).

A row's series is its _measurement, _field and every other string column of the group key
except _start and _stop as tags; its time is _time. Writing the same rows again writes the same
series and timestamps, which the store keeps once (the last write wins).

A query's ``to()`` calls are gathered and written when the query ends, one durable write per
bucket (:class:`StoreSink`): a task whose program has several ``to()`` calls (the built-in
rollup has four) waits for one group commit per run, not one per call, and a run that fails
or is killed part way writes nothing, so a rerun starts from the same store.
"""

from __future__ import annotations

from gateway.batch import Batch, UInt
from gateway.query.errors import fail
from gateway.query.tables import Table

_NOT_TAGS = {"_start", "_stop", "_measurement", "_field", "_time", "_value"}


def tables_to_batch(tables: list[Table], batch: Batch | None = None) -> Batch:
    """The points of the tables, added to ``batch`` (a new one when None)."""
    batch = Batch() if batch is None else batch
    for t in tables:
        for c in ("_time", "_measurement", "_field", "_value"):
            if c not in t.columns:
                fail(f"to() needs a {c} column in every table")
        tags = {k: v for k, v in t.key.items() if k not in _NOT_TAGS and isinstance(v, str)}
        uint = t.types.get("_value") == "uint"
        for i in range(t.nrows):
            value = t.value("_value", i)
            when = t.value("_time", i)
            if value is None or when is None:
                continue
            row_tags = dict(tags)
            for c in t.data:
                if c not in _NOT_TAGS and t.types.get(c) == "string" and t.data[c][i] is not None:
                    row_tags[c] = t.data[c][i]
            batch.add(t.value("_measurement", i), row_tags, t.value("_field", i),
                      UInt(value) if uint else value, int(when))
    return batch


class StoreSink:
    """The writer of :class:`gateway.query.executor.Executor`: ``to()`` into ``store``.

    Each call checks the bucket and turns the tables into points at once (errors point at the
    call); :meth:`finish`, when the query has run, writes each bucket's points in one write
    that returns once they are durable. ``sender`` names the writer to the group commit (see
    :meth:`gateway.store.Store.write`): it waits for each answer before it writes again."""

    def __init__(self, store, sender=None) -> None:
        self.store = store
        self.sender = sender
        self._batches: dict[str, Batch] = {}

    async def __call__(self, bucket: str, tables: list[Table]) -> int:
        try:
            self.store.bucket(bucket)
        except KeyError:
            fail(f"to(): bucket {bucket!r} does not exist")
        batch = self._batches.get(bucket)
        before = len(batch) if batch is not None else 0
        batch = self._batches[bucket] = tables_to_batch(tables, batch)
        return len(batch) - before

    async def finish(self) -> None:
        """Writes what the to() calls gathered; returns once it is durable. Raises FluxError
        naming the problem when the store refused points, StoreError when it could not write."""
        batches, self._batches = self._batches, {}
        for bucket, batch in batches.items():
            if len(batch):
                result = await self.store.write(batch, bucket, sender=self.sender)
                if result.problem:
                    fail(f"to(): {result.problem}")
