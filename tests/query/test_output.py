"""Annotated CSV is read by influxdb-client's own parser into the expected tables; JSON lines
and the table printer show the same rows."""

from __future__ import annotations

import io
import json
import math

from influxdb_client.client.flux_csv_parser import FluxCsvParser, FluxSerializationMode
from urllib3.response import HTTPResponse

from gateway.batch import UInt
from gateway.query.output import annotated_csv, json_lines, table_text
from query_support import S, T0, Store, batch_of, query, run, store_config

NOW = T0 + 3600 * S
QUERIES = [
    'from(bucket: "raw") |> range(start: -1h) |> filter(fn: (r) => r._measurement == "env")',
    'from(bucket: "raw") |> range(start: -1h) |> filter(fn: (r) => r._field == "temp") '
    '|> aggregateWindow(every: 10m, fn: mean) |> yield(name: "means")',
    'from(bucket: "raw") |> range(start: -1h) |> filter(fn: (r) => r._field == "count") |> window(every: 20m) |> max()',
    'from(bucket: "raw") |> range(start: -1h) |> filter(fn: (r) => r._field == "temp") |> count() |> group()',
]


def _points():
    rows = []
    for i in range(0, 3600, 30):
        t = T0 + i * S
        rows += [("env", {"room": "a,b \"q\""}, "temp", t, 20.0 + i / 7 if i != 60 else math.nan),
                 ("env", {"room": "c"}, "temp", t, -1.5 * i),
                 ("env", {"room": "c"}, "count", t, i * 3 - 100),
                 ("env", {"room": "c"}, "total", t, UInt(2**64 - 1 - i)),
                 ("env", {"room": "c"}, "on", t, i % 60 == 0),
                 ("log", {}, "msg", t, f"line {i}, \"quoted\"\nnext")]
    return rows


def _results(tmp_path):
    async def scenario():
        async with Store(str(tmp_path), store_config(head_points=64)) as store:
            await store.write(batch_of(_points()))
            return [await query(store, q, now=NOW) for q in QUERIES]
    return run(scenario())


def _parse(text: str):
    response = HTTPResponse(body=io.BytesIO(text.encode()), preload_content=False)
    parser = FluxCsvParser(response=response, serialization_mode=FluxSerializationMode.tables)
    list(parser.generator())
    return parser.table_list()


def _expected(value, type_):
    if value is None:
        return None
    if type_ == "time":
        return value   # compared as ns below
    return value


def test_influxdb_client_reads_our_csv_into_the_same_tables(tmp_path):
    for results in _results(tmp_path):
        text = "".join(annotated_csv(results))
        assert text.endswith("\r\n") and text.startswith("#group,false,false,")
        got = _parse(text)
        ours = [(r, t) for r in results for t in r.tables]
        assert len(got) == len(ours)
        for flux_table, (result, table) in zip(got, ours):
            assert [c.label for c in flux_table.columns] == ["result", "table", *table.columns]
            assert [c.label for c in flux_table.columns if c.group] == list(table.key)
            assert len(flux_table.records) == table.nrows
            for i, record in enumerate(flux_table.records):
                assert record["result"] == result.name
                for c in table.columns:
                    want, have = table.value(c, i), record[c]
                    if table.types[c] == "time":
                        ns = int(have.timestamp()) * 10**9 + have.microsecond * 1000
                        assert ns == want // 1000 * 1000
                    elif isinstance(want, float) and math.isnan(want):
                        assert math.isnan(have)
                    else:
                        assert have == want, (c, have, want)


def test_json_lines_and_table_show_every_row(tmp_path):
    for results in _results(tmp_path):
        lines = "".join(json_lines(results)).splitlines()
        assert len(lines) == sum(t.nrows for r in results for t in r.tables)
        for line in lines:
            row = json.loads(line)
            assert {"result", "table"} <= set(row)
        text = "".join(table_text(results))
        assert text.count("Table ") == sum(len(r.tables) for r in results)


def test_csv_types_follow_influxdb(tmp_path):
    results = _results(tmp_path)[0]
    text = "".join(annotated_csv(results))
    datatypes = {line for line in text.split("\r\n") if line.startswith("#datatype")}
    joined = ",".join(datatypes)
    for t in ("double", "long", "unsignedLong", "boolean", "string", "dateTime:RFC3339"):
        assert t in joined


def test_csv_dialect_keeps_the_rows_and_drops_what_was_not_asked_for(tmp_path):
    results = _results(tmp_path)[1]
    full = "".join(annotated_csv(results)).split("\r\n")
    plain = "".join(annotated_csv(results, annotations=())).split("\r\n")
    bare = "".join(annotated_csv(results, header=False, annotations=("datatype",), delimiter=";")).split("\r\n")
    name = results[0].name
    assert not any(line.startswith("#") for line in plain)
    data = [line for line in full if line.startswith(",,")]
    # Without #default, each row names its result itself.
    assert [line for line in plain if line.startswith(f",{name},")] == [f",{name}" + line[1:] for line in data]
    assert plain.count(full[3]) == full.count(full[3]) > 0   # the header rows
    assert not any(line.startswith(";result;") for line in bare)
    assert [line.split(";") for line in bare if line.startswith("#")] == \
        [line.split(",") for line in full if line.startswith("#datatype")]


def test_times_of_a_column_are_written_as_each_alone():
    """format_times (a date a day, the time of day by arithmetic) writes what format_time
    writes for each value: fractions, negative times, days datetime cannot write, nulls."""
    import random

    from gateway.query.values import Time, format_time, format_times

    rng = random.Random(12)
    values = [T0 + rng.randrange(-10**15, 10**15) for _ in range(2000)]
    values += [Time(T0), T0 + 1, T0 - 1, 0, -1, -10**9, 10**9 - 1, 86400 * 10**9 - 1,
               -62135596800 * 10**9, -62135596800 * 10**9 - 1,        # year 1 and before it
               253402300799 * 10**9 + 999_999_999, 253402300800 * 10**9,   # year 9999 and after
               -(1 << 63), (1 << 63) - 1, True]
    values += [rng.randrange(-(1 << 63), 1 << 63) for _ in range(200)]
    got = format_times(values + [None])
    assert got == [format_time(v) for v in values] + [""]


def test_writers_give_each_cell_as_written_value_by_value():
    """The writers format a column at a time; every cell is what its value alone gives:
    group key values, column-backed times and numbers, nulls, lists of any type."""
    from array import array

    from gateway.query.executor import Result
    from gateway.query.output import _text
    from gateway.query.tables import NullableColumn, Table, TimeColumn
    from gateway.query.values import Time, format_time

    key = {"_start": Time(T0), "_stop": Time(T0 + 60 * S), "_field": "v", "host": "a,\"b\""}
    types = {"_start": "time", "_stop": "time", "_field": "string", "host": "string",
             "_time": "time", "_value": "float", "n": "int", "ok": "bool", "u": "uint",
             "when": "time", "s": "string"}
    data = {"_time": TimeColumn(array("q", [T0, T0 + 1, T0 - 10**9 + 5])),
            "_value": NullableColumn(array("d", [1.5, 0.0, float("nan")]), bytearray([1, 0, 1])),
            "n": array("q", [-3, 0, 7]), "ok": [True, None, False], "u": [UInt(2**64 - 1), 0, None],
            "when": [None, Time(-1), Time(T0 + 123_456_789)], "s": ["x", "", None]}
    tables = [Table(key, data, types, 3), Table(dict(key, host="c"), {"_value": [float("inf")]},
                                                {**types}, 1)]
    results = [Result("_result", tables)]
    import csv

    rows = list(csv.reader(io.StringIO("".join(annotated_csv(results, annotations=())))))
    want = [[_text(t.value(c, i), t.types.get(c, "string")) for c in t.columns]
            for t in tables for i in range(t.nrows)]
    assert [r[3:] for r in rows if r and r[1] != "result"] == want
    lines = [json.loads(line) for line in "".join(json_lines(results)).splitlines()]
    assert len(lines) == len(want)
    for row, (t, i) in zip(lines, [(t, i) for t in tables for i in range(t.nrows)]):
        for c in t.columns:
            v = t.value(c, i)
            if t.types.get(c) == "time" and v is not None:
                v = format_time(v)
            elif isinstance(v, float) and not math.isfinite(v):
                v = None
            assert row[c] == v, (c, i)
