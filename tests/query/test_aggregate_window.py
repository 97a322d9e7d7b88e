"""aggregateWindow over the store equals a naive reference of Flux's semantics, on random data
with gaps, duplicates (the last write wins), out-of-order writes and empty windows, for every
function, offsets, createEmpty and timeSrc; windows cut across blocks and read batches."""

from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from gateway.query.windows import is_selector
from gateway.store import reading
from query_support import S, T0, Store, batch_of, close, query, rows_of, run, store_config

FUNCTIONS = ("mean", "min", "max", "sum", "count", "first", "last", "median", "spread", "stddev")


def reference(points: dict[int, object], start, stop, every, offset, fn, create_empty, time_src):
    """[(time, value)] of aggregateWindow as Flux documents it, computed the plain way."""
    out = []
    s = (start - offset) // every * every + offset
    while s < stop:
        lo, hi = max(s, start), min(s + every, stop)
        vs = [points[t] for t in sorted(points) if lo <= t < hi]
        s += every
        if not vs:
            if is_selector(fn) or not create_empty:
                continue
            out.append((lo if time_src == "_start" else hi, 0 if fn == "count" else None))
            continue
        if fn == "count":
            v = len(vs)
        elif fn == "mean":
            v = math.fsum(vs) / len(vs)
        elif fn == "sum":
            v = sum(vs)
        elif fn == "min":
            v = min(vs)
        elif fn == "max":
            v = max(vs)
        elif fn == "first":
            v = vs[0]
        elif fn == "last":
            v = vs[-1]
        elif fn == "median":
            v = statistics.median(vs)
        elif fn == "spread":
            v = max(vs) - min(vs)
        else:
            v = statistics.stdev(vs) if len(vs) > 1 else None
        out.append((lo if time_src == "_start" else hi, v))
    return out


writes = st.lists(st.lists(st.tuples(st.integers(0, 400), st.integers(-1000, 1000)),
                           min_size=1, max_size=60), min_size=1, max_size=5)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writes=writes, every=st.integers(1, 120), offset=st.integers(-200, 200),
       start=st.integers(-20, 200), span=st.integers(1, 500), create_empty=st.booleans(),
       time_src=st.sampled_from(["_stop", "_start"]), reopen=st.integers(0, 4), as_int=st.booleans(),
       batch=st.sampled_from([1, 7, 65536]))
def test_aggregate_window_matches_reference(tmp_path_factory, monkeypatch, writes, every, offset,
                                            start, span, create_empty, time_src, reopen, as_int, batch):
    monkeypatch.setattr(reading, "BATCH_POINTS", batch)   # windows cut across read batches
    data_dir = tmp_path_factory.mktemp("store")
    latest: dict[int, object] = {}

    async def scenario():
        store = Store(str(data_dir), store_config())
        await store.open()
        try:
            for n, batch in enumerate(writes):
                rows = []
                for sec, v in batch:
                    value = v if as_int else v / 8
                    rows.append(("m", {"host": "a"}, "f", T0 + sec * S, value))
                    latest[T0 + sec * S] = value
                await store.write(batch_of(rows))
                if n % 2 == 0:
                    await store.flush(seal=True)      # sealed blocks that overlap
                if n == reopen:
                    await store.close()               # checkpointed into the index
                    store = Store(str(data_dir), store_config())
                    await store.open()
            lo, hi = T0 + start * S, T0 + (start + span) * S
            out = {}
            for fn in FUNCTIONS:
                src = (f'from(bucket: "raw") |> range(start: {lo // S}, stop: {hi // S}) '
                       f'|> aggregateWindow(every: {every}s, offset: {offset}s, fn: {fn}, '
                       f'createEmpty: {str(create_empty).lower()}, timeSrc: "{time_src}")')
                out[fn] = rows_of(await query(store, src, now=hi))
            return lo, hi, out
        finally:
            await store.close()

    lo, hi, got = run(scenario())
    for fn in FUNCTIONS:
        want = reference(latest, lo, hi, every * S, offset * S, fn, create_empty, time_src)
        rows = got[fn]
        if not any(lo <= t < hi for t in latest):
            assert rows == []   # no series in range: no table
            continue
        assert [r["_time"] for r in rows] == [t for t, _ in want], fn
        for r, (_, v) in zip(rows, want):
            assert close(r["_value"], v), (fn, r, v)
            assert (r["_start"], r["_stop"]) == (lo, hi)
            assert r["_field"] == "f" and r["host"] == "a"


def test_int_sum_is_exact_and_float_mean_is_a_float(tmp_path):
    big = 2**62

    async def scenario():
        async with Store(str(tmp_path), store_config()) as store:
            await store.write(batch_of([("m", {}, "i", T0 + k * S, big) for k in range(3)]))
            return rows_of(await query(store, 'from(bucket:"raw") |> range(start: 0) '
                                              '|> aggregateWindow(every: 1h, fn: sum, createEmpty: false)',
                                       now=T0 + 10 * S))

    rows = run(scenario())
    assert [r["_value"] for r in rows] == [(3 * big + 2**63) % 2**64 - 2**63]  # wraps like int64


@pytest.mark.parametrize("method, want", [("exact_mean", 2.5), ("exact_selector", 2.0),
                                          ("estimate_tdigest", 2.5)])
def test_median_methods(tmp_path, method, want):
    async def scenario():
        async with Store(str(tmp_path), store_config()) as store:
            await store.write(batch_of([("m", {}, "f", T0 + k * S, float(v))
                                        for k, v in enumerate([4, 1, 3, 2])]))
            return rows_of(await query(store, f'from(bucket:"raw") |> range(start: 0) '
                                              f'|> median(method: "{method}")', now=T0 + 10 * S))

    rows = run(scenario())
    assert [r["_value"] for r in rows] == [want]
    if method == "exact_selector":
        assert rows[0]["_time"] == T0 + 3 * S   # the selected row keeps its time
