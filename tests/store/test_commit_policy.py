"""When commits run: large waiting batches at once, small ones together once per interval, and
points nobody waits for (local sensors) with the next commit or within local_sync."""

from __future__ import annotations

import asyncio

from gateway.config.units import parse_duration
from gateway.store import Store

from store_support import T0, make_batch, read_all, small_config


def rows(start: int, n: int, series: int = 10):
    return [("env", {"s": str(i % series)}, "temp", T0 + (start + i) * 10**9, 20 + (i % 7) / 100)
            for i in range(n)]


def slow_sync(**overrides):
    """An interval no test waits out: a commit that runs happened for another reason."""
    return small_config(**{"wal_sync": parse_duration("1h"), "head_points": 8192,
                           "local_sync": parse_duration("1h"), **overrides})


def test_a_batch_that_fills_a_page_is_committed_without_waiting_for_the_interval(data_dir):
    async def scenario():
        async with Store(data_dir, slow_sync()) as store:
            # Would wait an hour under an interval-only policy.
            await store.write(make_batch(rows(0, 20_000)))
            assert store.stats("raw")["raw"]["wal_syncs"] == 1

    asyncio.run(scenario())


def test_small_writes_share_one_sync(data_dir):
    async def scenario():
        async with Store(data_dir, slow_sync()) as store:
            small = [asyncio.create_task(store.write(make_batch(rows(i * 10, 10))))
                     for i in range(5)]
            await asyncio.sleep(0)
            assert not any(t.done() for t in small)   # a page is not full: they wait
            # Whatever runs a commit takes them along: here a batch that fills a page.
            await store.write(make_batch(rows(1000, 20_000)))
            await asyncio.gather(*small)
            assert store.stats("raw")["raw"]["wal_syncs"] == 1

    asyncio.run(scenario())


def test_a_lone_sender_of_small_batches_is_committed_at_once(data_dir):
    """A writer that sends a batch and waits for its answer before the next (a Telegraf with
    1,000-line batches) gets a commit per batch rather than one per interval."""
    async def scenario():
        async with Store(data_dir, slow_sync()) as store:
            for i in range(5):   # each would wait the hour without the rule
                await asyncio.wait_for(
                    store.write(make_batch(rows(i * 100, 100)), sender="telegraf"), 60)
            assert store.stats("raw")["raw"]["wal_syncs"] == 5

    asyncio.run(scenario())


def test_senders_are_committed_together_once_each_of_them_waits(data_dir):
    async def scenario():
        async with Store(data_dir, slow_sync()) as store:
            await store.write(make_batch(rows(0, 10)), sender="a")
            await store.write(make_batch(rows(10, 10)), sender="b")
            # Both were heard from lately: a write of one waits for the other's.
            first = asyncio.create_task(store.write(make_batch(rows(20, 10)), sender="a"))
            await asyncio.sleep(0.05)
            assert not first.done()
            await asyncio.wait_for(store.write(make_batch(rows(30, 10)), sender="b"), 60)
            await first
            assert store.stats("raw")["raw"]["wal_syncs"] == 3

    asyncio.run(scenario())


def test_writes_without_a_sender_keep_to_the_interval(data_dir):
    """The MQTT reader's writes (many publishers behind them, several in flight) and other
    writers that do not say who they are never start a commit of their own by being alone."""
    async def scenario():
        async with Store(data_dir, slow_sync()) as store:
            pending = asyncio.create_task(store.write(make_batch(rows(0, 10))))
            await asyncio.sleep(0.05)
            assert not pending.done()
            assert store.stats("raw")["raw"]["wal_syncs"] == 0
            await store.write(make_batch(rows(100, 10)), sender="client")   # takes it along
            await pending
            assert store.stats("raw")["raw"]["wal_syncs"] == 1

    asyncio.run(scenario())


def test_a_sender_not_heard_from_for_an_interval_is_forgotten(data_dir):
    """A client that stopped sending holds the others back for one interval at most."""
    async def scenario():
        async with Store(data_dir, slow_sync(wal_sync=parse_duration("200ms"))) as store:
            commits = store._commits
            await store.write(make_batch(rows(0, 10)), sender="gone")
            await store.write(make_batch(rows(10, 10)), sender="stays")
            assert set(commits._heard) == {"gone", "stays"}
            await asyncio.sleep(0.3)   # "gone" sends no more
            await store.write(make_batch(rows(20, 10)), sender="stays")
            assert set(commits._heard) == {"stays"}

    asyncio.run(scenario())


def test_points_nobody_waits_for_are_readable_at_once_and_ride_along_with_the_next_sync(data_dir):
    async def scenario():
        async with Store(data_dir, slow_sync()) as store:
            result = await store.write(make_batch(rows(0, 50)), wait=False)
            assert result.points == 50
            stats = store.stats("raw")["raw"]
            assert stats["wal_syncs"] == 0 and stats["points"] == 50
            assert sum(len(v) for v in (await read_all(store)).values()) == 50
            await store.write(make_batch(rows(100, 20_000)))   # a commit for a waiting writer
            assert store.stats("raw")["raw"]["wal_syncs"] == 1
            assert store.buckets["raw"].unwaited_since is None   # logged with it
        async with Store(data_dir, slow_sync()) as store:
            assert sum(len(v) for v in (await read_all(store)).values()) == 20_050

    asyncio.run(scenario())


def test_points_nobody_waits_for_are_synced_within_local_sync(data_dir):
    config = slow_sync()
    config.local_sync = parse_duration("50ms")

    async def scenario():
        async with Store(data_dir, config) as store:
            await store.write(make_batch(rows(0, 50)), wait=False)
            b = store.buckets["raw"]
            while b.unwaited_since is not None:   # the commit loop's deadline, not this test's
                await asyncio.sleep(0.01)
            assert store.stats("raw")["raw"]["wal_syncs"] == 1
            assert b.heads.counters()["unlogged_points"] == 0

    asyncio.run(scenario())


def test_card_writes_are_reported_from_the_process_and_the_block_device(data_dir):
    async def scenario():
        async with Store(data_dir, small_config()) as store:
            await store.write(make_batch(rows(0, 100)))
            card = store.card_writes()
            health = store.health()
            stats = store.stats("raw")["raw"]
        assert card["process_bytes_written"] > 0 and card["process_bytes_per_day"] > 0
        # The tests' data dir is on a block device here; the figure is None on tmpfs.
        assert card["device"] is None or card["device_bytes_written"] >= 0
        assert health["card_writes"]["seconds"] > 0
        assert stats["bytes_written_per_day"] > 0

    asyncio.run(scenario())
