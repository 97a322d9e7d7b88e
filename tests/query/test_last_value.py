"""``from |> range |> filter |> last()`` answered from the store's newest point equals the
general read (the C kernels over every point in the range), for ranges that end before the
newest point, after it, and before the first one, on every value type."""

from __future__ import annotations

import random
from datetime import datetime, timezone

from gateway.batch import UInt
from query_support import S, T0, Store, batch_of, query, rows_of, run, store_config


def rfc3339(ns: int) -> str:
    return datetime.fromtimestamp(ns // S, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def tables_of(results) -> list[tuple]:
    return [(r.name, t.key, t.columns, t.types, list(t.rows())) for r in results for t in r.tables]


def test_last_from_the_newest_point_equals_the_general_read(tmp_path):
    rng = random.Random(5)
    values = {"f": lambda i: rng.uniform(-5, 5), "i": lambda i: rng.randrange(-9, 9),
              "u": lambda i: UInt(rng.randrange(9)), "b": lambda i: rng.random() < 0.5,
              "s": lambda i: f"x{i}"}
    rows = []
    for i in range(400):   # out of order, with redeliveries of earlier times
        t = rng.randrange(300) if rng.random() < 0.3 else i
        rows += [("m", {"host": h}, f, T0 + t * S, make(i)) for h in ("a", "b")
                 for f, make in values.items()]
    now = T0 + 400 * S

    async def scenario():
        checked = 0
        async with Store(str(tmp_path / "data"), store_config()) as store:
            for part in range(4):
                await store.write(batch_of(rows[part::4]))
                if part % 2:
                    await store.flush(seal=part == 3)
                for start, stop in ((0, 500), (0, 200), (250, 260), (-100, 0), (399, 400)):
                    rng_ = f"range(start: {(T0 // S) + start}, stop: {(T0 // S) + stop})"
                    for pred in ('r.host == "a"', 'r._field == "s"', "true"):
                        fast = f'from(bucket: "raw") |> {rng_} |> filter(fn: (r) => {pred}) |> last()'
                        # a test of each point keeps the plan off the newest point
                        general = (f'from(bucket: "raw") |> {rng_} |> filter(fn: (r) => {pred}) '
                                   f'|> filter(fn: (r) => r._time >= {rfc3339(T0 + start * S)}) |> last()')
                        a = await query(store, fast, now)
                        b = await query(store, general, now)
                        assert tables_of(a) == tables_of(b), (fast, rows_of(a), rows_of(b))
                        checked += len(rows_of(a))
        return checked

    assert run(scenario()) > 100
