"""Helpers of the query tests (imported by module name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import asyncio
import math

from gateway.batch import Batch
from gateway.config.model import BucketConfig, StoreSection
from gateway.config.units import parse_duration, parse_size
from gateway.query import compile_query, run_query
from gateway.store import Store

#: 2023-11-14T22:13:20Z
T0 = 1_700_000_000 * 10**9
S = 10**9


def store_config(head_points: int = 16) -> StoreSection:
    config = StoreSection(wal_sync="always", head_points=head_points)
    config.buckets = {"raw": BucketConfig(parse_size("4MiB"), None),
                      "rollup": BucketConfig(parse_size("1MiB"), None)}
    config.checkpoint_interval = parse_duration("1h")
    return config


def batch_of(rows) -> Batch:
    """A Batch from (measurement, tags, field, time_ns, value) rows."""
    batch = Batch()
    for measurement, tags, field, ts, value in rows:
        batch.add(measurement, tags, field, value, ts)
    return batch


async def query(store, source: str, now: int, **kw):
    results, _ = await run_query(compile_query(source, now=now, **kw), store)
    return results


def rows_of(results) -> list[dict]:
    """Every row of every table, with the result name and table number."""
    out = []
    for r in results:
        for n, t in enumerate(r.tables):
            for row in t.rows():
                out.append({"result": r.name, "table": n, **row})
    return out


def close(a, b) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
    return a == b


def run(coro):
    return asyncio.run(coro)


__all__ = ["T0", "S", "Store", "store_config", "batch_of", "query", "rows_of", "close", "run"]
