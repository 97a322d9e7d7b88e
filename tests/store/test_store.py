"""Store behaviour a user notices: what is written is read back exactly, once per timestamp."""

from __future__ import annotations

import asyncio
import math
import os
import struct
import subprocess
import sys

import pytest

from gateway.batch import UInt
from gateway.errors import StoreError, StoreLocked
from gateway.store import Store, UnknownBucket

from store_support import T0, make_batch, read_all, small_config


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def run(coro):
    return asyncio.run(coro)


def test_every_type_round_trips_through_heads_blocks_and_restart(data_dir, config):
    floats = [21.5, -0.0, math.inf, -math.inf, math.nan, 5e-324, 1.7976931348623157e308, 0.1 + 0.2]
    rows = []
    for i in range(200):
        ts = T0 + i * 10**9
        rows += [("env", {"room": "a b"}, "temp", ts, floats[i % len(floats)] + (i if i % 8 == 0 else 0)),
                 ("env", {"room": "a b"}, "count", ts, (-1) ** i * (2**63 - 1 - i)),
                 ("env", {"room": "a b"}, "total", ts, UInt(2**64 - 1 - i)),
                 ("env", {"room": "a b"}, "on", ts, i % 3 == 0),
                 ("log", {}, "msg", ts, f'line "{i}" \\ é' * (i % 4))]
    expected = {}
    for m, tags, f, ts, v in rows:
        expected.setdefault((m, f), []).append((ts, v))

    def check(got):
        assert len(got) == 5
        for (m, f), pts in expected.items():
            key = next(k for k in got if k.startswith(m) and k.endswith(" " + f))
            assert [t for t, _ in got[key]] == [t for t, _ in pts]
            for (_, a), (_, b) in zip(got[key], pts):
                if isinstance(b, float):
                    assert bits(a) == bits(b)
                else:
                    assert a == b

    async def scenario():
        async with Store(data_dir, config) as store:
            await store.write(make_batch(rows[:500]))
            await store.flush()                       # blocks in the ring and the index
            await store.write(make_batch(rows[500:]))  # the rest stays in heads (WAL only)
            check(await read_all(store))
        async with Store(data_dir, config) as store:   # replay + index
            check(await read_all(store))
            stats = store.stats("raw")["raw"]
            assert stats["points"] == 1000
            assert stats["series"] == 5

    run(scenario())


def test_same_series_and_time_keeps_the_last_write(data_dir, config):
    async def scenario():
        async with Store(data_dir, config) as store:
            await store.write(make_batch([("m", {}, "v", T0 + i, float(i)) for i in range(100)]))
            await store.flush(seal=True)
            # a redelivery of old points with new values, some twice in one batch
            await store.write(make_batch([("m", {}, "v", T0 + 5, 50.0), ("m", {}, "v", T0 + 5, 51.0),
                                          ("m", {}, "v", T0 + 99, 990.0), ("m", {}, "v", T0 + 200, 2.0)]))
            got = (await read_all(store))["m v"]
            assert len(got) == 101
            assert dict(got)[T0 + 5] == 51.0 and dict(got)[T0 + 99] == 990.0
            await store.flush(seal=True)
            got2 = (await read_all(store))["m v"]
            assert got2 == got
            assert await store.last("m v") == (T0 + 200, 2.0)
    run(scenario())


def test_scan_filters_by_time_measurement_tags_and_field(data_dir, config):
    async def scenario():
        async with Store(data_dir, config) as store:
            rows = [(m, {"host": h}, f, T0 + t * 10**9, float(t))
                    for m in ("cpu", "mem") for h in ("a", "b") for f in ("x", "y") for t in range(100)]
            await store.write(make_batch(rows))
            await store.flush()
            got = await read_all(store, start=T0 + 10 * 10**9, stop=T0 + 20 * 10**9,
                                 measurement="cpu", tags={"host": "b"}, field="y")
            assert list(got) == ["cpu,host=b y"]
            assert [v for _, v in got["cpu,host=b y"]] == [float(t) for t in range(10, 20)]
            assert store.measurements() == ["cpu", "mem"]
            assert store.tag_values("host") == ["a", "b"]
            assert store.fields(measurement="mem") == {"x": "float", "y": "float"}
            assert await store.scan("raw", start=T0 + 10**12) == []
            assert await store.last("nope x") is None
    run(scenario())


def test_a_field_keeps_its_type_and_conflicting_points_are_refused_and_counted(data_dir, config):
    async def scenario():
        async with Store(data_dir, config) as store:
            await store.write(make_batch([("m", {}, "v", T0, 1.5)]))
            result = await store.write(make_batch([("m", {}, "v", T0 + 1, 7), ("m", {}, "w", T0 + 1, 7)]))
            assert (result.points, result.refused) == (1, 1)
            assert "m v" in result.problem and "float" in result.problem
            assert store.stats("raw")["raw"]["type_conflicts"] == 1
            assert await read_all(store) == {"m v": [(T0, 1.5)], "m w": [(T0 + 1, 7)]}
    run(scenario())


def test_unknown_bucket_and_closed_store_are_clear_errors(data_dir, config):
    async def scenario():
        store = Store(data_dir, config)
        with pytest.raises(StoreError, match="not open"):
            await store.write(make_batch([("m", {}, "v", T0, 1.0)]))
        async with store:
            with pytest.raises(UnknownBucket, match="unknown bucket 'nope'.*raw, rollup"):
                await store.write(make_batch([("m", {}, "v", T0, 1.0)]), bucket="nope")
            await store.write(make_batch([("m", {}, "v", T0, 1.0)]), bucket="rollup")
            assert await read_all(store, "rollup") == {"m v": [(T0, 1.0)]}
            assert await read_all(store, "raw") == {}
        await store.close()  # twice is fine
    run(scenario())


def test_a_second_process_gets_store_locked(data_dir, config):
    async def scenario():
        async with Store(data_dir, config):
            code = ("import asyncio, sys\n"
                    "from gateway.store import Store\n"
                    "from gateway.errors import StoreLocked\n"
                    f"sys.path.insert(0, {os.path.dirname(__file__)!r})\n"
                    "from store_support import small_config\n"
                    "try:\n"
                    f"    asyncio.run(Store({data_dir!r}, small_config()).open())\n"
                    "except StoreLocked as e:\n"
                    "    print('LOCKED', e)\n")
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 timeout=60)
            assert out.stdout.startswith("LOCKED"), out.stderr
            assert "in use by another process (pid" in out.stdout
        # released on close: this process can open it again
        async with Store(data_dir, config):
            pass
    run(scenario())


def test_same_process_second_open_is_refused(data_dir, config):
    async def scenario():
        async with Store(data_dir, config):
            with pytest.raises(StoreLocked):
                await Store(data_dir, config).open()
    run(scenario())


def test_interval_group_commit_answers_every_writer_once_synced(data_dir):
    from gateway.config.units import parse_duration

    config = small_config(wal_sync=parse_duration("50ms"))

    async def scenario():
        async with Store(data_dir, config) as store:
            writes = [store.write(make_batch([("m", {"w": str(w)}, "v", T0 + i, float(i)) for i in range(50)]))
                      for w in range(20)]
            results = await asyncio.gather(*writes)
            assert sum(r.points for r in results) == 1000
            assert len(await read_all(store)) == 20
    run(scenario())


def test_health_and_stats_are_plain_data(data_dir, config):
    import json

    async def scenario():
        async with Store(data_dir, config) as store:
            await store.write(make_batch([("m", {}, "v", T0 + i * 10**9, float(i)) for i in range(500)]))
            await store.flush()
            h = store.health()
            json.dumps(h)
            raw = h["buckets"]["raw"]
            assert raw["points"] == 500 and raw["points_in_blocks"] >= 448
            assert raw["oldest"] == T0 and raw["newest"] >= T0 + 447 * 10**9
            assert 0 < raw["fill"] < 1 and raw["bytes_per_point"] > 0
            assert raw["bytes_written"] > 0 and raw["wal_bytes"] > 0
    run(scenario())


def test_flushes_checkpoints_and_segment_switches_amid_writers(data_dir):
    from gateway.config.units import parse_duration

    config = small_config(wal_sync=parse_duration("2ms"), wal_segment_size=4096, head_points=32,
                          checkpoint_interval=parse_duration("10ms"))

    async def scenario():
        async with Store(data_dir, config) as store:
            async def writer(w):
                for k in range(40):
                    await store.write(make_batch([("m", {"w": str(w)}, "v", T0 + k * 100 + i, float(i))
                                                  for i in range(25)]))

            async def flusher():
                for k in range(30):
                    await store.flush(seal=k % 3 == 0)
                    await asyncio.sleep(0)

            await asyncio.gather(*(writer(w) for w in range(6)), flusher())
            got = await read_all(store)
            assert store.stats("raw")["raw"]["commit_errors"] == 0
        assert sorted(got) == [f"m,w={w} v" for w in range(6)]
        assert all(len(v) == 1000 for v in got.values())
        async with Store(data_dir, config) as store:
            assert await read_all(store) == got
    run(scenario())


def test_wal_space_is_reclaimed_once_its_points_are_sealed(data_dir):
    config = small_config(head_points=4096, wal_segment_size=2048)
    wal_dir = os.path.join(data_dir, "store", "buckets", "raw", "wal")

    async def scenario():
        async with Store(data_dir, config) as store:
            for k in range(20):
                await store.write(make_batch([("m", {"s": str(s)}, "v", T0 + (k * 50 + i) * 10**9,
                                               (k * 50 + i) * 0.37) for s in range(4) for i in range(50)]))
            await store.flush()
            assert len(os.listdir(wal_dir)) > 3      # heads not sealed: the WAL holds them
            await store.flush(seal=True)            # every point now in synced ring blocks
            assert os.listdir(wal_dir) == [os.path.basename(store.buckets["raw"].wal.path)]
            assert store.stats("raw")["raw"]["wal_bytes"] <= 2048 + 1024
            got = await read_all(store)
        assert all(len(v) == 1000 for v in got.values())
        async with Store(data_dir, config) as store:
            assert await read_all(store) == got
    run(scenario())


def test_idle_checkpoints_leave_the_index_file_alone(data_dir, config):
    index = os.path.join(data_dir, "store", "index.sqlite")

    async def scenario():
        async with Store(data_dir, config) as store:
            await store.write(make_batch([("m", {}, "v", T0 + i * 10**9, float(i)) for i in range(500)]))
            await store.flush()
            before = os.stat(index).st_mtime_ns, os.path.getsize(index)
            await asyncio.sleep(0.01)
            for _ in range(5):
                await store.flush()
            assert (os.stat(index).st_mtime_ns, os.path.getsize(index)) == before
    run(scenario())
