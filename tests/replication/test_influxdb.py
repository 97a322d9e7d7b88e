"""Replication to a real InfluxDB 1.6 (/write): values bit for bit, refused lines isolated
and dead-lettered, refused credentials pause the stream, a too large body is split."""

from __future__ import annotations

import asyncio

import pytest

from gateway.batch import UInt
from hil.rigs.upstreams import InfluxDB
from replication_support import (RECENT_NS, SECOND, local_content, running_stream, serving,
                                 stream_config, wait_until_equal, write_rows)

pytestmark = pytest.mark.integration

ODD_FLOATS = [0.1 + 0.2, 1e-300, -2.5e300, 123456.789012345678, 5e-324, 1 / 3, -1.0, 2.0 ** 60]


def typed_rows(start, n):
    for i in range(n):
        t = start + i * SECOND
        yield ("m", {"host": "a b,c"}, "f", t, ODD_FLOATS[i % len(ODD_FLOATS)] * (i + 1))
        yield ("m", {"host": "a b,c"}, "i", t, (-1) ** i * (2 ** 62 + i))
        yield ("m", {"host": "x"}, "ok", t, i % 3 == 0)
        yield ("m", {"host": "x"}, "s", t, f'say "hi" {i}\\')


def influx_expected(store, bucket="raw"):
    async def expected():
        return await local_content(store, (bucket,))
    return expected


def test_points_arrive_bit_for_bit(tmp_path, influxdb):
    async def main():
        config = stream_config("influxdb_v1", influxdb.url, db="gw", buckets=["raw"])
        async with running_stream(str(tmp_path / "data"), config) as (store, stream):
            await write_rows(store, typed_rows(RECENT_NS, 100))
            problems, _ = await wait_until_equal(influx_expected(store), influxdb.export)
            assert problems == [], "\n".join(problems)
            assert stream.status.counters["rejected_points"] == 0

    asyncio.run(main())


def test_refused_lines_are_dead_lettered_and_the_rest_delivered(tmp_path, influxdb):
    """InfluxDB 1.6 refuses unsigned integers and a field whose type differs from what it
    holds (400, partial write): the stream splits until those lines stand alone, keeps them
    with InfluxDB's words, delivers everything else and moves on."""
    from hil.rigs.upstreams import http

    conflict = f"c,host=x f=1i {RECENT_NS}\n".encode()  # makes c's f an integer upstream
    assert http("POST", f"{influxdb.url}/write?db=gw", conflict)[0] == 204

    async def main():
        config = stream_config("influxdb_v1", influxdb.url, db="gw", buckets=["raw"])
        async with running_stream(str(tmp_path / "data"), config) as (store, stream):
            good = list(typed_rows(RECENT_NS, 40))
            await write_rows(store, good)
            await write_rows(store, [("u", {}, "count", RECENT_NS + i * SECOND, UInt((1 << 63) + i))
                                     for i in range(3)])  # unsigned: no such type in 1.6
            await write_rows(store, [("c", {"host": "x"}, "f", RECENT_NS + SECOND, 2.5)])

            async def expected():
                content = await local_content(store, ("raw",))
                del content["u count"]
                content["c,host=x f"] = [(RECENT_NS, 1)]  # InfluxDB keeps its own point
                return content

            problems, _ = await wait_until_equal(expected, influxdb.export)
            assert problems == [], "\n".join(problems)
            deadline = asyncio.get_running_loop().time() + 60
            while stream.status.counters["rejected_points"] < 4 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.2)
            letters = stream.stats()["dead_letters"]
            assert sorted(d["line"].split(" ")[0] for d in letters) == ["c,host=x", "u", "u", "u"]
            assert all("400" in d["message"] and d["bucket"] == "raw" for d in letters)
            assert any("field type conflict" in d["message"] for d in letters)
            assert stream.status.counters["rejected_points"] == 4

    asyncio.run(main())


def test_refused_credentials_pause_the_stream_and_keep_the_data(tmp_path):
    server = InfluxDB(tmp_path / "influxdb", auth=False)
    server.start()  # creates the admin user; then authentication goes on
    server.stop()
    server.auth = True
    data_dir = str(tmp_path / "data")
    with serving(server):
        async def main():
            wrong = stream_config("influxdb_v1", server.url, db="gw", buckets=["raw"],
                                  user="admin", password="wrong")
            async with running_stream(data_dir, wrong) as (store, stream):
                await write_rows(store, typed_rows(RECENT_NS, 10))
                while stream.status.state != "paused":
                    await asyncio.sleep(0.1)
                stats = stream.stats()
                assert "401" in stats["last_error"] and "stream up" in stats["last_error"]
                assert stats["buckets"]["raw"]["position"] == 0
                assert stats["counters"]["errors_auth"] >= 1
            # Fixed credentials: everything kept is delivered.
            right = stream_config("influxdb_v1", server.url, db="gw", buckets=["raw"],
                                  user="admin", password="secret")
            async with running_stream(data_dir, right) as (store, stream):
                problems, _ = await wait_until_equal(influx_expected(store), server.export)
                assert problems == [], "\n".join(problems)

        asyncio.run(main())


def test_a_body_too_large_is_split(tmp_path):
    with serving(InfluxDB(tmp_path / "influxdb", max_body=4000)) as server:
        async def main():
            config = stream_config("influxdb_v1", server.url, db="gw", buckets=["raw"], gzip_level=0)
            async with running_stream(str(tmp_path / "data"), config) as (store, stream):
                await write_rows(store, typed_rows(RECENT_NS, 100))
                problems, _ = await wait_until_equal(influx_expected(store), server.export)
                assert problems == [], "\n".join(problems)
                assert stream.status.counters["batches_split"] > 0
                assert stream.status.counters["rejected_points"] == 0

        asyncio.run(main())
