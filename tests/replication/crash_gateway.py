"""A gateway process for the crash test: a store and one stream to the given upstream; writes
10 series at 1 s steps from the given index on, printing each index once its write is durable,
until it is killed. Batches are small (2 kB, about 50 points) and writes are paced (one every
20 ms, about ten per flush) so that a head send is about two batches."""

from __future__ import annotations

import asyncio
import sys

from gateway.batch import Batch
from gateway.replication.stream import ReplicationStream
from gateway.store import Store
from replication_support import store_config, stream_config

SERIES = 10


async def main(data_dir: str, url: str, first: int, base_ns: int) -> None:
    store = await Store(data_dir, store_config()).open()
    stream = ReplicationStream(stream_config("influxdb_v2", url, org="o", bucket="gw",
                                             flush_interval="200ms", batch_bytes="2kB",
                                             buckets=["raw"]), store)
    await stream.start()
    print("ready", flush=True)
    i = first
    while True:
        batch = Batch()
        for s in range(SERIES):
            batch.add("crash", {"s": str(s)}, "v", float(i * SERIES + s), base_ns + i * 1_000_000_000)
        await store.write(batch)
        print(i, flush=True)
        i += 1
        await asyncio.sleep(0.02)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
