"""The 2017 chained form parses to the same plan and gives the same result as its Flux spelling."""

from __future__ import annotations

from gateway.query import compile_query
from query_support import S, T0, Store, batch_of, query, rows_of, run, store_config

LEGACY = ('select(db:"raw").where(exp:{"_measurement"=="cpu" AND "_field"=="usage_system" AND '
          '"service"=="app-server"}).range(start:-12h).window(every:10m).max()')
FLUX = ('from(bucket:"raw") |> range(start:-12h) |> filter(fn: (r) => r._measurement == "cpu" and '
        'r._field == "usage_system" and r.service == "app-server") |> window(every:10m) |> max()')
NOW = T0 + 12 * 3600 * S


def test_same_plan():
    assert compile_query(LEGACY, now=NOW).plans == compile_query(FLUX, now=NOW).plans


def test_same_plan_with_or_not_and_group():
    legacy = ('select(db:"raw").where(exp:{NOT "host"=="a" OR "_value" > 3}).range(start:-1h)'
              '.group(by:["host"]).count()')
    flux = ('from(bucket:"raw") |> filter(fn: (r) => not r.host == "a" or r._value > 3) '
            '|> range(start:-1h) |> group(columns:["host"]) |> count()')
    assert compile_query(legacy, now=NOW).plans == compile_query(flux, now=NOW).plans


def test_different_queries_have_different_plans():
    other = LEGACY.replace("app-server", "db")
    assert compile_query(other, now=NOW).plans != compile_query(FLUX, now=NOW).plans


def test_same_result(tmp_path):
    rows = []
    for i in range(0, 12 * 3600, 7):
        for service in ("app-server", "db"):
            rows.append(("cpu", {"service": service, "host": "h1"}, "usage_system", T0 + i * S,
                         float((i * 37) % 101)))
            rows.append(("cpu", {"service": service, "host": "h1"}, "usage_user", T0 + i * S, float(i % 13)))

    async def scenario():
        async with Store(str(tmp_path), store_config(head_points=256)) as store:
            await store.write(batch_of(rows))
            return (rows_of(await query(store, LEGACY, now=NOW)),
                    rows_of(await query(store, FLUX, now=NOW)))

    legacy, flux = run(scenario())
    assert legacy == flux
    # one table per 10-minute window; T0 is not on a 10-minute boundary: 73 windows
    assert len({r["table"] for r in flux}) == 73
    assert {r["service"] for r in flux} == {"app-server"}
