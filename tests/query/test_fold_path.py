"""The fast path of window aggregation (the C fold straight from the ring blocks) gives what the
general path (batches merged in Python, folded by WindowFold) and the naive reference give: on
random data with gaps, duplicates, out-of-order writes, empty windows, createEmpty, offsets,
timeSrc and ranges that cut blocks; for aggregateWindow, window + an aggregate and an aggregate
of the whole range. Data written in time order must take the fast path."""

from __future__ import annotations

import asyncio
import shutil

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from gateway.datamodel import UInt
from gateway.query import FluxError, Limits, compile_query, executor, run_query
from query_support import S, T0, Store, batch_of, close, rows_of, run, store_config
from test_aggregate_window import reference

FUNCTIONS = ("mean", "min", "max", "sum", "count", "first", "last", "spread", "stddev")
SERIES = ("a", "b", "c")


async def _run(store, src: str, now: int, fast: bool):
    executor.FOLD_FROM_BLOCKS = fast
    try:
        results, ex = await run_query(compile_query(src, now=now), store)
    finally:
        executor.FOLD_FROM_BLOCKS = True
    return rows_of(results), ex.series_folded


def _write_plan(points: list[tuple[int, int]], in_order: bool, cuts: list[int]):
    """Batches of (second, value): in time order with distinct seconds, or as drawn."""
    if in_order:
        points = sorted({sec: v for sec, v in points}.items())
    out, at = [], 0
    for c in sorted(set(cuts)) + [len(points)]:
        if c > at:
            out.append(points[at:c])
            at = c
    return out


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(points=st.lists(st.tuples(st.integers(0, 600), st.integers(-1000, 1000)),
                       min_size=1, max_size=150),
       cuts=st.lists(st.integers(0, 150), max_size=6), in_order=st.booleans(),
       every=st.integers(1, 120), offset=st.integers(-200, 200), start=st.integers(-20, 300),
       span=st.integers(1, 700), create_empty=st.booleans(),
       time_src=st.sampled_from(["_stop", "_start"]), as_int=st.booleans(),
       reopen=st.booleans(), chunk=st.sampled_from([1, 2, 32]),
       blocks=st.sampled_from([1, 4, 65536]))
def test_fold_equals_general_path_and_reference(tmp_path_factory, monkeypatch, points, cuts,
                                                in_order, every, offset, start, span,
                                                create_empty, time_src, as_int, reopen, chunk,
                                                blocks):
    monkeypatch.setattr(executor, "FOLD_SERIES", chunk)   # series folded in the first trip
    monkeypatch.setattr(executor, "FOLD_BLOCKS", blocks)  # blocks a later trip takes
    data_dir = tmp_path_factory.mktemp("store")
    latest: dict[str, dict[int, object]] = {name: {} for name in SERIES}
    lo, hi = T0 + start * S, T0 + (start + span) * S

    async def scenario():
        store = Store(str(data_dir), store_config())
        await store.open()
        try:
            batches = _write_plan(points, in_order, cuts)
            for n, batch in enumerate(batches):
                rows = []
                for k, name in enumerate(SERIES):
                    for sec, v in batch:
                        value = v + k if as_int else (v + k) / 8
                        rows.append(("m", {"id": name}, "f", T0 + sec * S, value))
                        latest[name][T0 + sec * S] = value
                await store.write(batch_of(rows))
                if n % 2 == 0:
                    await store.flush(seal=True)          # sealed blocks, and a head after them
                if reopen and n == len(batches) // 2:
                    await store.close()                   # blocks then come from the index
                    store = Store(str(data_dir), store_config())
                    await store.open()
            out = {}
            for fn in FUNCTIONS:
                src = (f'from(bucket: "raw") |> range(start: {lo // S}, stop: {hi // S}) '
                       f'|> aggregateWindow(every: {every}s, offset: {offset}s, fn: {fn}, '
                       f'createEmpty: {str(create_empty).lower()}, timeSrc: "{time_src}")')
                out[fn] = (await _run(store, src, hi, True), await _run(store, src, hi, False))
            for src in (f'from(bucket: "raw") |> range(start: {lo // S}, stop: {hi // S}) '
                        f'|> window(every: {every}s, offset: {offset}s) |> max()',
                        f'from(bucket: "raw") |> range(start: {lo // S}, stop: {hi // S}) '
                        f'|> stddev()'):
                out[src] = (await _run(store, src, hi, True), await _run(store, src, hi, False))
            return out
        finally:
            await store.close()

    got = run(scenario())
    any_in_range = any(lo <= t < hi for t in latest["a"])
    for what, ((fast, folded), (general, _)) in got.items():
        if in_order and any_in_range:
            assert folded == len(SERIES), what        # time-ordered blocks take the fast path
        assert len(fast) == len(general), what
        for f, g in zip(fast, general):
            assert f.keys() == g.keys(), what
            for col in f:
                assert close(f[col], g[col]), (what, col, f, g)
    for fn in FUNCTIONS:
        rows = got[fn][0][0]
        for k, name in enumerate(SERIES):
            want = reference(latest[name], lo, hi, every * S, offset * S, fn, create_empty, time_src)
            mine = [r for r in rows if r["id"] == name]
            if not any(lo <= t < hi for t in latest[name]):
                assert mine == []
                continue
            assert [r["_time"] for r in mine] == [t for t, _ in want], fn
            for r, (_, v) in zip(mine, want):
                assert close(r["_value"], v), (fn, r, v)


def test_blocks_that_overlap_are_merged_and_the_rest_folded(tmp_path):
    """A rewritten stretch (a task's rerun, redelivered points) makes blocks that overlap in
    time: that run is merged (the last write wins) and the series stays on the fast path."""
    src = ('from(bucket: "raw") |> range(start: 0) '
           '|> aggregateWindow(every: 10s, fn: mean, createEmpty: false)')

    async def scenario():
        async with Store(str(tmp_path), store_config()) as store:
            for k in range(6):   # six sealed blocks of 16 points, 1 s apart
                await store.write(batch_of([("m", {}, "f", T0 + (16 * k + i) * S, 1.0)
                                            for i in range(16)]))
                await store.flush(seal=True)
            # seconds 20..39 written again with 3.0: a block over two older ones
            await store.write(batch_of([("m", {}, "f", T0 + s * S, 3.0) for s in range(20, 40)]))
            await store.flush(seal=True)
        async with Store(str(tmp_path), store_config()) as store:   # from the index
            fast = await _run(store, src, T0 + 200 * S, True)
            general = await _run(store, src, T0 + 200 * S, False)
            return fast, general

    (fast, folded), (general, _) = run(scenario())
    assert folded == 1
    assert fast == general
    assert [r["_value"] for r in fast] == [1.0, 1.0, 3.0, 3.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]


def test_fold_skips_a_damaged_block_as_the_general_path_does(tmp_path):
    """A block whose bytes were damaged on the card is skipped and noted by the fold as by the
    general path; the windows of the other blocks stay."""
    src = ('from(bucket: "raw") |> range(start: 0) '
           '|> aggregateWindow(every: 16s, fn: sum, createEmpty: false)')

    async def write():
        async with Store(str(tmp_path / "data"), store_config()) as store:
            for k in range(4):   # four sealed blocks of 16 points, one per 16 s window
                await store.write(batch_of([("m", {}, "f", T0 + (16 * k + i) * S, 1.0)
                                            for i in range(16)]))
                await store.flush(seal=True)
            return store.bucket("raw").ring.path

    async def read(fast: bool):
        # each path on its own copy: the first read's checkpoint drops the damaged block
        copy = tmp_path / ("fast" if fast else "general")
        shutil.copytree(tmp_path / "data", copy)
        async with Store(str(copy), store_config()) as store:
            rows, folded = await _run(store, src, T0 + 100 * S, fast)
            return rows, folded, set(store.bucket("raw").corrupt_seqs)

    _damage_second_block(run(write()))
    fast_rows, folded, fast_noted = run(read(True))
    general_rows, _, general_noted = run(read(False))
    assert folded == 1
    assert fast_rows == general_rows
    assert [r["_value"] for r in fast_rows] == [16.0, 16.0, 16.0]   # T0 is a multiple of 16 s
    assert fast_noted == general_noted and len(fast_noted) == 1


def _damage_second_block(ring_path: str) -> None:
    """Flips a byte inside the block of the ring's second entry."""
    with open(ring_path, "r+b") as f:
        data = f.read()
        first = data.index(b"GWRE", 4096)
        second = data.index(b"GWRE", first + 8)
        f.seek(second + 40)
        byte = f.read(1)
        f.seek(second + 40)
        f.write(bytes([byte[0] ^ 0xFF]))


def test_boolean_and_unsigned_series_fold_as_the_general_path_does(tmp_path):
    """Booleans (one-byte columns widened to words) and unsigned integers above 2**63 (exact,
    wrapping sums) on the fast path give the general path's values and types."""
    async def scenario():
        async with Store(str(tmp_path), store_config()) as store:
            rows = []
            for s in range(50):
                rows.append(("m", {}, "b", T0 + s * S, s % 3 == 0))
                rows.append(("m", {}, "u", T0 + s * S, UInt(2**63 + s * 2**55)))
            await store.write(batch_of(rows))
            await store.flush(seal=True)
            out = {}
            for field, fns in (("b", ("count", "min", "max", "first", "last")),
                               ("u", ("count", "sum", "min", "max", "first", "last", "spread",
                                      "mean"))):
                for fn in fns:
                    src = (f'from(bucket: "raw") |> range(start: 0) '
                           f'|> filter(fn: (r) => r._field == "{field}") '
                           f'|> aggregateWindow(every: 7s, fn: {fn}, createEmpty: false)')
                    out[field, fn] = (await _run(store, src, T0 + 100 * S, True),
                                      await _run(store, src, T0 + 100 * S, False))
            return out

    for what, ((fast, folded), (general, _)) in run(scenario()).items():
        assert folded == 1, what
        assert fast == general, what
        assert [type(r["_value"]) for r in fast] == [type(r["_value"]) for r in general], what


def test_a_query_stopped_in_one_trip_leaves_nothing_running(tmp_path, monkeypatch):
    """When a trip's tables pass the row cap, the query stops there with no task left behind,
    and the store answers the next query."""
    monkeypatch.setattr(executor, "FOLD_SERIES", 1)
    monkeypatch.setattr(executor, "FOLD_BLOCKS", 1)   # one series a trip
    src = ('from(bucket: "raw") |> range(start: 0) '
           '|> aggregateWindow(every: 10s, fn: mean, createEmpty: false)')

    async def scenario():
        async with Store(str(tmp_path), store_config()) as store:
            await store.write(batch_of([("m", {"id": str(k)}, "f", T0 + i * S, float(i))
                                        for k in range(5) for i in range(40)]))
            await store.flush(seal=True)
            before = asyncio.all_tasks()
            with pytest.raises(FluxError, match="more than 6 rows"):
                await run_query(compile_query(src, now=T0 + 60 * S, limits=Limits(max_rows=6)),
                                store)
            left = [t for t in asyncio.all_tasks() - before if not t.done()]
            results, ex = await run_query(compile_query(src, now=T0 + 60 * S), store)
            return left, sum(t.nrows for t in results[0].tables), ex.series_folded

    left, rows, folded = run(scenario())
    assert left == []
    assert rows == 5 * 4 and folded == 5


async def _sealed_blocks(store, measurement: str, series: int, blocks: int, value: float):
    """``blocks`` sealed blocks of 16 points (head_points=16) in each of ``series`` series,
    one a second from T0."""
    for k in range(blocks):
        await store.write(batch_of([(measurement, {"id": str(i)}, "f", T0 + (16 * k + j) * S,
                                     value) for i in range(series) for j in range(16)]))
        await store.flush(seal=True)


async def _trips_of(store, src: str, now: int, monkeypatch):
    """(series of each trip to the store's fold, results, series folded) of a query."""
    trips = []
    fold_windows = store.fold_windows

    async def counted(infos, *args):
        trips.append(len(infos))
        return await fold_windows(infos, *args)

    monkeypatch.setattr(store, "fold_windows", counted)
    results, ex = await run_query(compile_query(src, now=now), store)
    return trips, results, ex.series_folded


@pytest.mark.parametrize("written, trips, sums", [
    # 3 blocks a series, 12 a trip: 4 series a trip, the first by the bucket's 3 a series
    ([("m", 10, 3, 1.0)], [4, 4, 2], 48.0),
    # 10 series of one block and 2 of 14 (38 blocks, 4 a series rounded up): the first trip
    # of the one-block series takes 12 // 4 = 3 of them, the next (1 block a series listed
    # so far) the other 7 at once
    ([("m", 10, 1, 1.0), ("n", 2, 14, 2.0)], [3, 7], 16.0),
])
def test_trips_take_as_many_series_as_the_block_budget_allows(tmp_path, monkeypatch, written,
                                                              trips, sums):
    """Each trip takes FOLD_BLOCKS blocks' worth of series by the blocks per series listed so
    far; the first by the bucket's blocks per series."""
    monkeypatch.setattr(executor, "FOLD_SERIES", 2)
    monkeypatch.setattr(executor, "FOLD_BLOCKS", 12)
    src = ('from(bucket: "raw") |> range(start: 0) |> filter(fn: (r) => r._measurement == "m") '
           '|> aggregateWindow(every: 10s, fn: sum, createEmpty: false)')

    async def scenario():
        async with Store(str(tmp_path), store_config(head_points=16)) as store:
            for measurement, series, blocks, value in written:
                await _sealed_blocks(store, measurement, series, blocks, value)
            return await _trips_of(store, src, T0 + 600 * S, monkeypatch)

    got, results, folded = run(scenario())
    assert got == trips and folded == 10
    assert [sum(t.data["_value"]) for t in results[0].tables] == [sums] * 10


EXACT = ("mean", "sum", "count", "min", "max", "first", "last")   # the same bits on both paths


@pytest.mark.parametrize("seed", range(4))
def test_long_runs_of_blocks_fold_as_the_general_path_does(tmp_path, seed):
    """Tens of thousands of points a series in blocks of 1,024 (the fold decodes several blocks
    into one run and sums several windows side by side): jittered 1 Hz times with gaps, NaN
    values, a stretch written again (blocks that overlap), a damaged block. Sums, means,
    counts and the selectors have the very bits of the general path."""
    import random

    rnd = random.Random(seed)
    every, offset = rnd.choice([(600, 0), (7, 3), (61, -20), (3600, 0), (1, 0)])
    data = tmp_path / "data"
    points = []
    t = 0
    while len(points) < 20_000:
        t += 1 if rnd.random() < 0.95 else rnd.randint(2, 900)          # gaps
        jitter = rnd.randint(-300, 300) * 1_000_000 if seed % 2 else 0   # ms of jitter
        value = round(rnd.uniform(-50, 50), 2) if rnd.random() > 0.002 else float("nan")
        points.append((T0 + t * S + jitter, value))
    span = t + 1

    async def write():
        async with Store(str(data), store_config(head_points=1024)) as store:
            for at in range(0, len(points), 5000):
                await store.write(batch_of([("m", {"id": name}, "f", ts, v + k)
                                            for k, name in enumerate(SERIES)
                                            for ts, v in points[at:at + 5000]]))
            await store.flush(seal=True)
            if seed % 2 == 0:   # a stretch written again, over blocks already sealed
                again = points[7000:7300]
                await store.write(batch_of([("m", {"id": "a"}, "f", ts, v * 2)
                                            for ts, v in again]))
                await store.flush(seal=True)
            return store.bucket("raw").ring.path

    ring = run(write())
    if seed >= 2:
        _damage_second_block(ring)

    async def read(fast: bool):
        copy = tmp_path / ("fast" if fast else "general")   # each path notes the damage
        shutil.copytree(data, copy)
        out = {}
        async with Store(str(copy), store_config(head_points=1024)) as store:
            for fn in FUNCTIONS:
                src = (f'from(bucket: "raw") |> range(start: {T0 // S + 5}, '
                       f'stop: {T0 // S + span - 5}) |> aggregateWindow(every: {every}s, '
                       f'offset: {offset}s, fn: {fn}, createEmpty: false)')
                out[fn] = await _run(store, src, T0 + 2 * span * S, fast)
        return out

    fast, general = run(read(True)), run(read(False))
    for fn in FUNCTIONS:
        (f_rows, folded), (g_rows, _) = fast[fn], general[fn]
        assert folded == len(SERIES), fn
        assert len(f_rows) == len(g_rows) > 0, fn
        for f, g in zip(f_rows, g_rows):
            assert f.keys() == g.keys()
            if fn in EXACT:
                assert repr(f) == repr(g), (fn, f, g)   # repr: NaN-safe, and exact
            else:
                assert all(close(f[c], g[c]) for c in f), (fn, f, g)
