"""Flux text is untrusted: random and mutated programs either run or raise FluxError with a
position; nothing else escapes, nothing hangs (run time, nesting, regex and result size are
bounded)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from gateway.query import FluxError, Limits, compile_query, run_query
from query_support import S, T0, Store, batch_of, run, store_config

NOW = T0 + 600 * S
SEEDS = [
    'from(bucket: "raw") |> range(start: -10m) |> filter(fn: (r) => r._measurement == "m" and r._value > 2.5) |> aggregateWindow(every: 1m, fn: mean)',
    'from(bucket: "raw") |> range(start: 2023-11-14T22:13:20Z, stop: now()) |> window(every: 30s) |> median(method: "exact_selector") |> group(columns: ["host"]) |> sort(columns: ["_value"], desc: true) |> limit(n: 3)',
    'import "influxdata/influxdb/tasks"\noption task = {name: "t", every: 1h, offset: 5m}\nfrom(bucket: "raw") |> range(start: tasks.lastSuccess(orTime: -1h)) |> map(fn: (r) => ({r with _value: r._value * 2.0, x: "a" + "b"})) |> keep(columns: ["_time", "_value", "x"]) |> rename(columns: {x: "y"})',
    'select(db:"raw").where(exp:{"_measurement"=="m" AND "host"=~/a.*/}).range(start:-1h).window(every:10m).max()',
    'x = [1, 2, 3]\ny = {a: x[1], b: -1h30m}\nf = (a, b=2) => a * b + y.a\nf(a: 3)\nfrom(bucket: "raw") |> range(start: -1h) |> drop(columns: ["host"]) |> first() |> yield(name: "z")',
    'from(bucket: "raw") |> range(start: -1h) |> filter(fn: (r) => not exists r.host or r._field != "s", onEmpty: "keep") |> last() |> stddev() |> spread()',
]
ALPHABET = st.sampled_from(list('()[]{}|>=<-+*/%,:."\\ \n\tabrxyz_019hmsT') +
                           ["|>", "=>", "and", "or", "not", "from", "range", "filter", "r._value",
                            "aggregateWindow", "every:", "fn:", "mean", "1h", "-5m", '"raw"',
                            "/a+/", "2023-01-01T00:00:00Z", "start:", "(r) =>", "{r with", "import"])


def _store(tmp_path):
    async def fill():
        async with Store(str(tmp_path), store_config(head_points=32)) as store:
            rows = []
            for i in range(0, 600, 3):
                rows.append(("m", {"host": "a"}, "f", T0 + i * S, i / 3))
                rows.append(("m", {"host": "b"}, "i", T0 + i * S, i))
                rows.append(("m", {"host": "b"}, "s", T0 + i * S, f"v{i}"))
                rows.append(("m", {"host": "b"}, "b", T0 + i * S, i % 2 == 0))
            await store.write(batch_of(rows))
    run(fill())


def _try(data_dir, source: str) -> None:
    async def go():
        async with Store(data_dir, store_config(head_points=32)) as store:
            try:
                q = compile_query(source, now=NOW, limits=Limits(seconds=5, max_rows=20000))
                await run_query(q, store)
            except FluxError as e:
                assert e.line >= 0 and e.column >= 0
                assert e.line or "limit" in e.message or "rows" in e.message or "bucket" in \
                    e.message or "tables" in e.message or "series" in e.message, e
    run(go())


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    _store(d)
    return str(d)


def test_seed_programs_run(data_dir):
    for src in SEEDS:
        _try(data_dir, src)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.lists(ALPHABET, max_size=40).map("".join))
def test_random_programs(data_dir, text):
    _try(data_dir, text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.sampled_from(SEEDS), cuts=st.lists(st.tuples(st.integers(0, 300), st.integers(0, 6),
                                                              st.text(max_size=4)), max_size=4))
def test_mutated_programs(data_dir, seed, cuts):
    text = seed
    for at, drop, insert in cuts:
        at %= len(text) + 1
        text = text[:at] + insert + text[at + drop:]
    _try(data_dir, text)


@pytest.mark.parametrize("source", [
    "x = " + "-" * 5000 + "1",
    "x = " + "not " * 5000 + "true",
    "x = " + "[" * 5000,
    "x = " + "f(a: " * 3000,
    'x = "' + "a" * 300000 + '"',
    "f = (x) => x\n" + "g = (x) => f(x: f(x: f(x: f(x: x))))\n" * 1,
])
def test_deep_or_huge_programs_give_flux_errors(data_dir, source):
    with pytest.raises(FluxError):
        compile_query(source, now=NOW)
        raise FluxError("compiled")   # the last one compiles: still no other exception


def test_result_size_is_capped(data_dir):
    async def go():
        async with Store(data_dir, store_config(head_points=32)) as store:
            q = compile_query('from(bucket: "raw") |> range(start: -1h)', now=NOW,
                              limits=Limits(max_rows=100))
            await run_query(q, store)
    with pytest.raises(FluxError, match="more than 100 rows"):
        run(go())


@pytest.mark.parametrize("source", ["x = ²", "x = ٣", "x = 1٣", "x = 𝟙h"])
def test_digits_of_other_scripts_are_errors_not_hangs(source):
    with pytest.raises(FluxError):
        compile_query(source, now=NOW)
