"""Outages: the upstream stopped while the gateway keeps taking points, then back (for a few
flush intervals, and for ten minutes of data time played on the stream's own clock); a day of
backlog written while the upstream is down, then drained; a backlog larger than the raw ring
(raw shed and counted, rollups delivered)."""

from __future__ import annotations

import asyncio

import pytest

from gateway.backoff import Backoff
from gateway.config.model import BucketConfig
from gateway.config.units import parse_size
from gateway.replication.stream import ReplicationStream
from gateway.store import Store
from replication_support import (RECENT_NS, CATCH_UP_S, SECOND, VM_DIGITS, PlayedClock,
                                 local_content, store_config, stream_config, strip_labels,
                                 vm_expected, wait_until_equal, write_rows)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: Three hours ago: room for hours of points, none in the future (exports end at now).
PAST = RECENT_NS - 2 * 3600 * SECOND


def vm_content(vm):
    return strip_labels(vm.export(), "db")


def test_upstream_stopped_during_ingest_gets_everything_back(tmp_path, victoria):
    """VictoriaMetrics goes away in the middle of the ingest (an outage of several
    flush intervals, with a backlog accumulating in the ring) and comes back."""

    async def main():
        store = await Store(str(tmp_path / "data"), store_config()).open()
        stream = ReplicationStream(stream_config("influxdb_v2", victoria.url, org="o",
                                                 bucket="gw", timeout="2s"), store)
        await stream.start()
        try:
            def batch(i0, n):
                return [("env", {"room": f"r{s}"}, "temp", RECENT_NS + i * SECOND, float(i))
                        for i in range(i0, i0 + n) for s in range(20)]

            await write_rows(store, batch(0, 100), per_batch=200)
            await asyncio.get_running_loop().run_in_executor(None, victoria.stop)
            for k in range(10):
                await write_rows(store, batch(100 + k * 100, 100), per_batch=200)
                await write_rows(store, [("env_1m", {"room": "r0"}, "mean", RECENT_NS + k * 60 * SECOND,
                                          float(k))], "rollup")
                await asyncio.sleep(0.3)
            while stream.status.counters["errors_network"] < 2:
                await asyncio.sleep(0.1)
            stats = stream.stats()
            assert stats["state"] == "backing_off"
            assert stats["buckets"]["raw"]["backlog_blocks"] > 0
            assert stats["buckets"]["raw"]["lag_seconds"] > 0
            await asyncio.get_running_loop().run_in_executor(None, victoria.start)

            async def expected():
                return vm_expected(await local_content(store))

            problems, duplicates = await wait_until_equal(expected, lambda: vm_content(victoria))
            assert problems == [], "\n".join(problems)
            # A request the upstream took as it went down may have gone unanswered: resent
            # once. At most a delivery of heads (20 series x 64 points) was in flight.
            assert duplicates <= 20 * 64
            assert stream.stats()["buckets"]["raw"]["backlog_blocks"] == 0
        finally:
            await stream.stop()
            await store.close()

    asyncio.run(main())


def test_upstream_stopped_for_ten_minutes_of_ingest(tmp_path, victoria):
    """Twenty series at 1 Hz; VictoriaMetrics is stopped for ten minutes of data time while
    ingest goes on. The stream's clock is played by the test (a second of data time is a
    second on it), so its retries back off to the cap as they would in ten real minutes;
    then the upstream comes back and gets every point."""
    series, step = 20, 5  # seconds of data written at a time
    clock = PlayedClock()

    async def main():
        store = await Store(str(tmp_path / "data"), store_config()).open()
        stream = ReplicationStream(stream_config("influxdb_v2", victoria.url, org="o",
                                                 bucket="gw", timeout="2s"), store,
                                   sleep=clock.sleep, monotonic=clock.monotonic)
        await stream.start()
        ticking = None
        try:
            async def ingest(first_s, seconds):
                for t in range(first_s, first_s + seconds, step):
                    await write_rows(store, [("env", {"room": f"r{s}"}, "temp",
                                              RECENT_NS + i * SECOND, 20 + s + i / 100)
                                             for i in range(t, t + step) for s in range(series)],
                                     per_batch=series * step)
                    await clock.advance(step)

            await ingest(0, 60)
            await asyncio.get_running_loop().run_in_executor(None, victoria.stop)
            failures_before = stream.status.counters["errors"]
            waits_before = len(clock.slept)
            await ingest(60, 600)
            outage = clock.slept[waits_before:]
            stats = stream.stats()
            assert stats["state"] == "backing_off"
            assert stats["buckets"]["raw"]["backlog_blocks"] > 0
            # ten minutes of retries: doubling from 0.5 s to the 60 s cap (each drawn from
            # the upper half of its bound), never longer than the cap
            assert max(outage) <= Backoff().cap
            assert max(outage) >= Backoff().cap / 2
            assert stream.status.counters["errors"] - failures_before >= 10
            assert sum(outage) >= 600 - Backoff().cap

            await asyncio.get_running_loop().run_in_executor(None, victoria.start)

            async def tick():  # the stream's time goes on while the test waits for the upstream
                while True:
                    await clock.advance(1)
                    await asyncio.sleep(0.05)

            ticking = asyncio.get_running_loop().create_task(tick())

            async def expected():
                return vm_expected(await local_content(store))

            problems, duplicates = await wait_until_equal(expected, lambda: vm_content(victoria),
                                                          digits=VM_DIGITS)
            assert problems == [], "\n".join(problems)
            assert sum(len(v) for v in (await expected()).values()) == 660 * series
            # Nothing was in flight when the upstream stopped between two writes, but its
            # last answer may have been lost: at most a delivery of heads is sent again.
            assert duplicates <= series * 64
            assert stream.stats()["buckets"]["raw"]["backlog_blocks"] == 0
        finally:
            if ticking is not None:
                ticking.cancel()
                await asyncio.gather(ticking, return_exceptions=True)
            await stream.stop()
            await store.close()

    asyncio.run(main())


def test_a_day_of_backlog_written_while_the_upstream_is_down_then_drained(tmp_path, victoria):
    """24 hours of 1-minute data from 30 series (and their hourly rollups) are written while
    VictoriaMetrics is down; when it is back the stream drains the day, every point once."""
    series, minutes = 30, 24 * 60
    day_ago = RECENT_NS - minutes * 60 * SECOND

    async def main():
        await asyncio.get_running_loop().run_in_executor(None, victoria.stop)
        store = await Store(str(tmp_path / "data"), store_config()).open()
        stream = ReplicationStream(stream_config("influxdb_v2", victoria.url, org="o",
                                                 bucket="gw", timeout="2s"), store)
        await stream.start()
        try:
            for hour in range(24):
                await write_rows(store, [("env", {"room": f"r{s}"}, "temp",
                                          day_ago + (hour * 60 + m) * 60 * SECOND,
                                          round(18 + s / 10 + ((hour * 60 + m) * 7919 % 400) / 100, 2))
                                         for m in range(60) for s in range(series)],
                                 per_batch=60 * series)
                await write_rows(store, [("env_1h", {"room": f"r{s}"}, "mean",
                                          day_ago + hour * 3600 * SECOND, 18 + s / 10 + hour / 4)
                                         for s in range(series)], "rollup")
            # A retry that began after the last write (the second failure from now on) has
            # read the raw backlog, so the lag is known.
            failures = stream.status.counters["errors_network"]

            async def retried():
                while stream.status.counters["errors_network"] < failures + 2:
                    await asyncio.sleep(0.1)

            await asyncio.wait_for(retried(), CATCH_UP_S)
            stats = stream.stats()
            assert stats["state"] == "backing_off"
            assert stats["buckets"]["raw"]["backlog_points"] > 0
            assert stats["buckets"]["raw"]["lag_seconds"] > 23 * 3600
            assert stream.status.counters["points_sent"] == 0

            await asyncio.get_running_loop().run_in_executor(None, victoria.start)

            async def expected():
                return vm_expected(await local_content(store))

            problems, duplicates = await wait_until_equal(expected, lambda: vm_content(victoria))
            assert problems == [], "\n".join(problems)
            local = await expected()
            assert sum(len(v) for k, v in local.items() if k[0] == "env_temp") == series * minutes
            assert sum(len(v) for k, v in local.items() if k[0] == "env_1h_mean") == series * 24
            assert duplicates == 0
            stats = stream.stats()
            assert stats["buckets"]["raw"]["backlog_blocks"] == 0
            assert stats["buckets"]["raw"]["dropped_blocks"] == 0
        finally:
            await stream.stop()
            await store.close()

    asyncio.run(main())


def test_a_backlog_larger_than_the_raw_ring_sheds_raw_and_delivers_rollups(tmp_path, victoria, proxy_to):
    proxy = proxy_to(victoria)
    proxy.set("reset")
    config = store_config()
    config.buckets = {"raw": BucketConfig(parse_size("64KiB"), None),
                      "rollup": BucketConfig(parse_size("1MiB"), None)}

    async def main():
        store = await Store(str(tmp_path / "data"), config).open()
        stream = ReplicationStream(stream_config("influxdb_v2", proxy.url, org="o", bucket="gw",
                                                 timeout="2s"), store)
        await stream.start()
        try:
            written = 0
            for k in range(40):
                rows = [("env", {"room": f"r{s}"}, "temp", PAST + (k * 200 + i) * SECOND,
                         ((k * 200 + i) * 2654435761 % 1000003) / 1000 + s)
                        for s in range(4) for i in range(200)]  # noisy: ~5 bytes a point
                await write_rows(store, rows, per_batch=800)
                written += len(rows)
                await write_rows(store, [("env_1m", {"room": f"r{s}"}, "mean",
                                          PAST + k * 60 * SECOND, k + s / 10) for s in range(4)],
                                 "rollup")
                await store.flush()
            raw = store.stats("raw")["raw"]
            assert raw["dropped_before_forwarding"] > 0
            assert raw["points"] < written
            proxy.set("pass")

            firsts: dict = {}

            async def expected():
                local = vm_expected(await local_content(store))
                firsts.clear()
                firsts.update({k: pts[0][0] for k, pts in local.items() if pts})
                return local

            def upstream_window():
                # The ring stays full: a head sealed after its blocks went upstream evicts
                # them here, and the upstream rightly keeps them. Compared: the window this
                # store still holds.
                return {k: [p for p in pts if p[0] >= firsts.get(k, p[0])]
                        for k, pts in vm_content(victoria).items()}

            problems, duplicates = await wait_until_equal(expected, upstream_window,
                                                          digits=VM_DIGITS)
            stats = stream.stats()
            assert problems == [], "\n".join(problems)
            upstream_raw = {(k, ts) for k, v in vm_content(victoria).items() if k[0] == "env_temp"
                            for ts, _ in v}
            assert len(upstream_raw) <= written
            assert stats["buckets"]["raw"]["dropped_blocks"] > 0
            assert stats["buckets"]["rollup"]["dropped_blocks"] == 0
            rollups = {k: v for k, v in vm_content(victoria).items() if k[0] == "env_1m_mean"}
            assert sum(len(v) for v in rollups.values()) == 40 * 4  # the whole rollup history
        finally:
            await stream.stop()
            await store.close()

    asyncio.run(main())
