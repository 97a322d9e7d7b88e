"""``to()``: tables written into a bucket as points (one per row with a non-null _value).

A row's series is its _measurement, _field and every other string column of the group key
except _start and _stop as tags; its time is _time. Writing the same rows again writes the same
series and timestamps, which the store keeps once (the last write wins).
"""

from __future__ import annotations

from gateway.batch import Batch, UInt
from gateway.query.errors import fail
from gateway.query.tables import Table

_NOT_TAGS = {"_start", "_stop", "_measurement", "_field", "_time", "_value"}


def tables_to_batch(tables: list[Table]) -> Batch:
    batch = Batch()
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


def store_writer(store):
    """The writer for :class:`gateway.query.executor.Executor`: to() into ``store``."""
    async def write(bucket: str, tables: list[Table]) -> int:
        try:
            store.bucket(bucket)
        except KeyError:
            fail(f"to(): bucket {bucket!r} does not exist")
        batch = tables_to_batch(tables)
        n = len(batch)
        if n:
            result = await store.write(batch, bucket)
            if result.problem:
                fail(f"to(): {result.problem}")
        return n
    return write
