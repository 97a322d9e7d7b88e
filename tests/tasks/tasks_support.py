"""Helpers of the task tests: a store, a fake clock, and the rollup recomputed from raw."""

from __future__ import annotations

import asyncio

from gateway.batch import Batch
from gateway.config.model import BucketConfig, SchedulerSection, StoreSection
from gateway.config.units import parse_duration, parse_size
from gateway.query import compile_query, run_query

MIN = 60 * 10**9
#: A whole hour (2023-11-14T22:00:00Z).
T0 = 1_699_999_200 * 10**9


class FakeClock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def store_config() -> StoreSection:
    config = StoreSection(wal_sync="always", head_points=64)
    config.buckets = {"raw": BucketConfig(parse_size("4MiB"), None),
                      "rollup": BucketConfig(parse_size("4MiB"), None)}
    config.checkpoint_interval = parse_duration("1h")
    return config


def settings(**kw) -> SchedulerSection:
    s = SchedulerSection()
    for k, v in kw.items():
        setattr(s, k, parse_duration(v) if isinstance(v, str) else v)
    return s


def raw_batch(start: int, stop: int, step: int = 10 * 10**9) -> Batch:
    """Two numeric series and a string one (the rollup leaves strings alone)."""
    batch = Batch()
    for t in range(start, stop, step):
        k = t // step
        batch.add("env", {"room": "a"}, "temp", 20.0 + (k * 7919 % 101) / 10, t)
        batch.add("env", {"room": "b"}, "count", k * 31 % 17, t)
        batch.add("env", {"room": "b"}, "note", f"n{k}", t)
    return batch


async def rollup_rows(store, start: int, stop: int) -> dict:
    """{(series key fields, time): value} of the rollup bucket."""
    q = compile_query(f'from(bucket: "rollup") |> range(start: {start // 10**9}, stop: {stop // 10**9})',
                      now=stop)
    results, _ = await run_query(q, store)
    return {(t.key["_measurement"], t.key.get("room"), t.key["_field"], time): value
            for r in results for t in r.tables
            for time, value in zip(t.data["_time"], t.data["_value"])}


async def recomputed(store, start: int, stop: int) -> dict:
    """The same rows computed from raw in one query per function."""
    out = {}
    for fn in ("mean", "min", "max", "count"):
        q = compile_query(
            f'import "types"\nfrom(bucket: "raw") |> range(start: {start // 10**9}, stop: {stop // 10**9}) '
            f'|> filter(fn: (r) => types.isNumeric(v: r._value)) '
            f'|> aggregateWindow(every: 1m, fn: {fn}, timeSrc: "_start", createEmpty: false)', now=stop)
        results, _ = await run_query(q, store)
        for r in results:
            for t in r.tables:
                for time, value in zip(t.data["_time"], t.data["_value"]):
                    out[(t.key["_measurement"], t.key.get("room"), f'{t.key["_field"]}_{fn}', time)] = value
    return out


def run(coro):
    return asyncio.run(coro)
