"""A query's memory follows its output, not its range: the peak of the Python heap while a
long range of several series is aggregated stays a small fraction of the points read (which
would take 16 bytes a point held), on the C fold's path and on the general (streaming) one, and
a window's row costs about the 16 bytes of its time and value, also with createEmpty's empty
windows; a table of a series' points holds the 16 bytes of each. Deterministic: it counts
allocations (tracemalloc), it does not time anything."""

from __future__ import annotations

import asyncio
import tracemalloc
from array import array

import pytest

from gateway.config.model import BucketConfig, StoreSection
from gateway.config.units import parse_duration, parse_size
from gateway.datamodel import FLOAT
from gateway.lineprotocol import parse, serialize_series
from gateway.query import compile_query, run_query
from gateway.query.values import Time
from query_support import S, T0, Store, run

SERIES = 4
SECONDS = 300_000          # about 3.5 days at 1 Hz per series: 1.2 M points, 19 MB if held
GAP = (100_000, 110_000)   # seconds without points: empty windows
SECONDS_WRITTEN = [s for s in range(SECONDS) if not GAP[0] <= s < GAP[1]]
HELD = 16 * SERIES * len(SECONDS_WRITTEN)


def _config() -> StoreSection:
    config = StoreSection(wal_sync=parse_duration("1s"), head_points=1024)
    config.buckets = {"raw": BucketConfig(parse_size("64MiB"), None),
                      "rollup": BucketConfig(parse_size("1MiB"), None)}
    config.checkpoint_interval = parse_duration("1h")
    return config


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("long"))

    async def load():
        async with Store(path, _config()) as store:
            for k in range(SERIES):
                ts = array("q", (T0 + s * S for s in SECONDS_WRITTEN))
                values = array("d", ((s * 7 + k) % 1000 / 10 for s in SECONDS_WRITTEN))
                got = parse(serialize_series(f"m,id=s{k} v", FLOAT, ts, values))
                assert not got.errors
                await store.write(got.batch)
            await store.flush(seal=True)

    run(load())
    return path


def _peak_of(data_dir: str, source: str) -> tuple[int, int, int]:
    """(peak of the Python heap during the query above what it held before, bytes the result
    holds afterwards, rows), the store opened beforehand."""
    async def scenario():
        async with Store(data_dir, _config()) as store:
            query = compile_query(source, now=T0 + SECONDS * S)
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                results, ex = await run_query(query, store)
                # (the loop's handle that woke the query last holds the last fold trip's
                # windows until the loop runs again)
                await asyncio.sleep(0)
                after, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert ex.points_read == HELD // 16
            rows = sum(t.nrows for r in results for t in r.tables)
            return peak - before, after - before, rows

    return run(scenario())


RANGE = f"range(start: {T0 // S}, stop: {T0 // S + SECONDS})"


@pytest.mark.parametrize("create_empty", ["false", "true"])
@pytest.mark.parametrize("fn", ["mean", "count", "max"])
def test_window_fold_holds_its_output_not_its_range(data_dir, fn, create_empty):
    peak, kept, rows = _peak_of(data_dir, f'from(bucket: "raw") |> {RANGE} '
                                          f'|> aggregateWindow(every: 1m, fn: {fn}, '
                                          f'createEmpty: {create_empty})')
    every_minute = create_empty == "true" and fn != "max"   # selectors skip empty windows
    minutes = {(T0 // S + s) // 60 for s in (range(SECONDS) if every_minute
                                              else SECONDS_WRITTEN)}
    assert rows == SERIES * len(minutes)
    # a row: its time and value (8 bytes each) and createEmpty's presence byte; a Python
    # object per row would be 80 bytes or more
    assert kept < 20 * rows + 256 * 1024, (kept, rows)
    assert peak < HELD / 8, (peak, HELD)


def test_general_path_holds_a_batch_per_series_not_its_range(data_dir):
    # median is not mergeable across blocks: its series stream in batches
    peak, kept, rows = _peak_of(data_dir, f'from(bucket: "raw") |> {RANGE} '
                                          f'|> aggregateWindow(every: 1m, fn: median)')
    assert rows == SERIES * len({(T0 // S + s) // 60 for s in range(SECONDS)})
    assert kept < 20 * rows + 256 * 1024, (kept, rows)
    assert peak < HELD / 3, (peak, HELD)



def test_points_read_as_they_are_hold_their_columns_not_an_object_a_point(data_dir):
    """A table of a series' points (no aggregation) keeps its times and values as read, 16
    bytes a point, not a Time and a float object per point (72 bytes with their list slots)."""
    async def scenario():
        async with Store(data_dir, _config()) as store:
            query = compile_query(f'from(bucket: "raw") |> range(start: {T0 // S}, '
                                  f'stop: {T0 // S + 50_000}) |> filter(fn: (r) => r.id == "s1")',
                                  now=T0 + SECONDS * S)
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                results, _ = await run_query(query, store)
                await asyncio.sleep(0)
                kept = tracemalloc.get_traced_memory()[0] - before
            finally:
                tracemalloc.stop()
            table, = results[0].tables
            return kept, table.nrows, table.value("_time", 7), table.value("_value", 7)

    kept, rows, time_7, value_7 = run(scenario())
    assert rows == 50_000 and time_7 == T0 + 7 * S and value_7 == (7 * 7 + 1) % 1000 / 10
    assert type(time_7) is Time and type(value_7) is float
    assert kept < 20 * rows + 256 * 1024, (kept, rows)
