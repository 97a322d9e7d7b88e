"""Series chosen by a filter on series-key columns: the filter is evaluated once per distinct
value of the columns it reads, and must choose exactly the series that evaluating it on each
series' own record chooses (types told apart: 0, 0.0 and false are equal in Python)."""

from __future__ import annotations

import itertools

import pytest

from gateway.datamodel import UInt
from gateway.query import compile_query, run_query
from query_support import S, T0, Store, batch_of, run, store_config

#: (measurement, tags, field, value): every value type, tags present and absent.
SERIES = [
    ("cpu", {"host": "a"}, "usage", 1.5),
    ("cpu", {"host": "b"}, "usage", 2.5),
    ("cpu", {"host": "a", "core": "0"}, "usage", 0.0),
    ("cpu", {}, "usage", 0.0),
    ("cpu", {"host": "a"}, "count", 0),
    ("cpu", {"host": "b"}, "count", 3),
    ("cpu", {"host": "a"}, "flag", False),
    ("cpu", {"host": "b"}, "flag", True),
    ("cpu", {"host": "a"}, "total", UInt(0)),
    ("cpu", {"host": "a"}, "note", "x"),
    ("mem", {"host": "a"}, "usage", 4.0),
    ("mem", {"core": "1"}, "count", 5),
    # names that the key escapes, and ones whose escaped text holds another name's
    ("disk io", {"path": "/a,b=c d"}, "free bytes", 1.0),
    ("cpu", {"host": "ab"}, "x usage", 2.0),
    ("cpu", {"xhost": "a"}, "usage=", 3.0),
]

#: Flux filter body on r -> the same test in Python on (measurement, tags, field, value).
FILTERS = [
    ('r._field == "usage"', lambda m, t, f, v: f == "usage"),
    ('types.isNumeric(v: r._value)', lambda m, t, f, v: not isinstance(v, (bool, str))),
    ('not types.isNumeric(v: r._value)', lambda m, t, f, v: isinstance(v, (bool, str))),
    ('r.host == "a" and types.isNumeric(v: r._value)',
     lambda m, t, f, v: t.get("host") == "a" and not isinstance(v, (bool, str))),
    ('exists r.core', lambda m, t, f, v: "core" in t),
    ('not exists r.host or r._measurement == "mem"',
     lambda m, t, f, v: "host" not in t or m == "mem"),
    ('r.host =~ /^b/ or r._field == "note"',
     lambda m, t, f, v: t.get("host", "").startswith("b") or f == "note"),
    ('r._start < r._stop and r._measurement != "cpu"', lambda m, t, f, v: m != "cpu"),
    # equalities the catalogue answers from the keys, alone, together, and with other tests
    ('"mem" == r._measurement', lambda m, t, f, v: m == "mem"),
    ('r._measurement == "disk io" and r._field == "free bytes" and r.path == "/a,b=c d"',
     lambda m, t, f, v: m == "disk io"),
    ('r.host == "a" and r._field == "usage"', lambda m, t, f, v: t.get("host") == "a" and f == "usage"),
    ('r.host == "a" and (r._field == "usage" or r._field == "count")',
     lambda m, t, f, v: t.get("host") == "a" and f in ("usage", "count")),
    ('r.host == "a" and r._field == "usage" and exists r.core',
     lambda m, t, f, v: t.get("host") == "a" and f == "usage" and "core" in t),
    ('r.host == "ab"', lambda m, t, f, v: t.get("host") == "ab"),
    ('r._field == "usage=" or r._field == "x usage"', lambda m, t, f, v: f in ("usage=", "x usage")),
    ('r.path == "/a,b=c d" and r._measurement == "disk io"', lambda m, t, f, v: "path" in t),
]


@pytest.mark.parametrize("flux, want", FILTERS, ids=[f for f, _ in FILTERS])
def test_series_filters_choose_what_each_series_record_gives(tmp_path, flux, want):
    async def scenario():
        async with Store(str(tmp_path), store_config()) as store:
            await store.write(batch_of([(m, t, f, T0 + k * S, v)
                                        for k, (m, t, f, v) in enumerate(SERIES)]))
            src = (f'import "types"\nfrom(bucket: "raw") |> range(start: {T0 // S}, '
                   f'stop: {T0 // S + 60}) |> filter(fn: (r) => {flux}) |> count()')
            results, _ = await run_query(compile_query(src, now=T0 + 60 * S), store)
            return {(t.key["_measurement"], tuple(sorted((k, v) for k, v in t.key.items()
                                                         if not k.startswith("_"))),
                     t.key["_field"]) for t in results[0].tables}

    got = run(scenario())
    expected = {(m, tuple(sorted(t.items())), f) for m, t, f, v in SERIES if want(m, t, f, v)}
    assert got == expected and got   # every filter here chooses some series


@pytest.mark.parametrize("flux", ['r._field == "usage" and r._field == "count"',
                                  'r._measurement == "cpu" and r._field == "usage"',
                                  'r._field == "usage"'])
def test_equalities_that_no_series_or_other_filter_meets_choose_none(tmp_path, flux):
    """One column asked for two texts, in one filter or in two, chooses no series."""
    async def scenario():
        async with Store(str(tmp_path), store_config()) as store:
            await store.write(batch_of([(m, t, f, T0 + k * S, v)
                                        for k, (m, t, f, v) in enumerate(SERIES)]))
            src = (f'from(bucket: "raw") |> range(start: {T0 // S}, stop: {T0 // S + 60}) '
                   f'|> filter(fn: (r) => {flux}) |> filter(fn: (r) => r._measurement == "mem")'
                   f'|> filter(fn: (r) => r._field == "count") |> count()')
            results, _ = await run_query(compile_query(src, now=T0 + 60 * S), store)
            return [t.key["_measurement"] for t in results[0].tables]

    assert run(scenario()) == []


def _count_filter_calls(q) -> list:
    """The _field of each record the query's filters are evaluated on, as they run."""
    calls = []
    original = q.interpreter.row_function

    def counting(fn, pos):
        test = original(fn, pos)
        return lambda record: calls.append(record["_field"]) or test(record)

    q.interpreter.row_function = counting
    return calls


def test_a_filter_of_equalities_only_is_not_evaluated_per_series(tmp_path):
    """The catalogue answers it from the keys: the filter function never runs."""
    async def scenario():
        async with Store(str(tmp_path), store_config()) as store:
            await store.write(batch_of([(m, t, f, T0 + k * S, v)
                                        for k, (m, t, f, v) in enumerate(SERIES)]))
            q = compile_query(f'from(bucket: "raw") |> range(start: {T0 // S}, stop: {T0 // S + 60}) '
                              f'|> filter(fn: (r) => r._field == "usage" and r.host == "a") '
                              f'|> count()', now=T0 + 60 * S)
            calls = _count_filter_calls(q)
            results, _ = await run_query(q, store)
            return calls, sorted(t.key["_measurement"] for t in results[0].tables)

    assert run(scenario()) == ([], ["cpu", "cpu", "mem"])


def test_a_filter_is_evaluated_once_per_distinct_value(tmp_path):
    """A filter on _field over many series of few fields runs once per field (a test that the
    catalogue cannot answer from the keys: not an equality)."""
    async def scenario():
        async with Store(str(tmp_path), store_config()) as store:
            rows = [("m", {"id": str(i)}, f, T0 + i * S, float(i))
                    for i, f in itertools.product(range(20), ("a", "b"))]
            await store.write(batch_of(rows))
            q = compile_query(f'from(bucket: "raw") |> range(start: {T0 // S}, stop: {T0 // S + 60}) '
                              f'|> filter(fn: (r) => r._field =~ /^a$/) |> count()', now=T0 + 60 * S)
            calls = _count_filter_calls(q)
            results, _ = await run_query(q, store)
            return sorted(calls), len(results[0].tables)

    calls, tables = run(scenario())
    assert calls == ["a", "b"] and tables == 20
