"""WAL segments are kept for replication streams: until every stream's cursor is past the
blocks their points were sealed into (a restarted stream replays them to know what it had
sent from heads), at most REPLICATION_KEPT_SEGMENTS of them; without streams, as soon as
their points are in synced blocks."""

from __future__ import annotations

import asyncio
import os

from gateway.config import load_text
from gateway.config.units import parse_size
from gateway.runtime import Context
from gateway.store import Store
from gateway.store.bucket import REPLICATION_KEPT_SEGMENTS
from store_support import T0, make_batch, small_config


def _segments(data_dir: str) -> list[str]:
    return sorted(os.listdir(os.path.join(data_dir, "store", "buckets", "raw", "wal")))


async def _write_and_seal(store, commits: int, start: int = 0) -> None:
    for c in range(start, start + commits):
        await store.write(make_batch([("env", {"room": str(s)}, "temp", T0 + c * 10**9, 20.0 + c)
                                      for s in range(3)]))
    await store.flush(seal=True)


def test_segments_wait_for_the_streams_cursors_up_to_a_bound(data_dir):
    config = small_config(wal_segment_size=parse_size("128B"))   # a record or two each

    async def main():
        async with Store(data_dir, config) as store:
            # no stream: sealed and synced, the segments go
            await _write_and_seal(store, 6)
            assert len(_segments(data_dir)) == 1
            await store.set_replication_cursor("cloud", "raw", store.last_sealed_seq("raw"))
            # a stream whose cursor is behind the blocks keeps their segments
            await _write_and_seal(store, 3, start=6)
            kept = len(_segments(data_dir))
            assert kept > 1
            # once its cursor is past them (and a checkpoint saw that), they go
            await store.set_replication_cursor("cloud", "raw", store.last_sealed_seq("raw"))
            await store.flush()
            await store.flush()
            assert len(_segments(data_dir)) < kept
            # a stream that stopped sending keeps at most the bound
            await _write_and_seal(store, 40, start=9)
            assert len(_segments(data_dir)) <= REPLICATION_KEPT_SEGMENTS

    asyncio.run(main())


def test_a_stream_no_longer_configured_keeps_no_segments_and_no_position(data_dir):
    config = small_config(wal_segment_size=parse_size("128B"))
    gateway_config = load_text('[[replication]]\nname = "cloud"\nkind = "influxdb_v2"\n'
                               'url = "http://127.0.0.1:9"\norg = "o"\nbucket = "b"\n'
                               'token = "t"\n', "gw.toml")

    async def sent_by_two_streams():
        async with Store(data_dir, config) as store:
            await _write_and_seal(store, 3)
            await store.set_replication_cursor("cloud", "raw", store.last_sealed_seq("raw"))
            await store.set_replication_cursor("old", "raw", 0)   # a stream removed since
            await _write_and_seal(store, 6, start=3)
            return len(_segments(data_dir))

    async def restarted_without_old():
        store = Store(data_dir, config)
        await store.start(Context(config=gateway_config, data_dir=data_dir))
        try:
            assert dict(store.bucket("raw").cursors) == {"cloud": store.bucket("raw").cursors["cloud"]}
            await store.set_replication_cursor("cloud", "raw", store.last_sealed_seq("raw"))
            await store.flush()
            await store.flush()
            return len(_segments(data_dir))
        finally:
            await store.stop()

    async def reopened():
        async with Store(data_dir, config) as store:
            return set(store.bucket("raw").cursors)

    held_for_old = asyncio.run(sent_by_two_streams())
    assert held_for_old > 1
    assert asyncio.run(restarted_without_old()) < held_for_old
    assert asyncio.run(reopened()) == {"cloud"}   # gone from the position file, index and copy
