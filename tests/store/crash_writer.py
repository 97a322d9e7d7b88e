"""Child process of the crash test: writes batches until killed, logging what it was told.

    python crash_writer.py DATA_DIR ACK_FILE RUN MODE

Points are a pure function of (run, batch, index), so the test can tell a point that was
written from one that never was. MODE says who writes:

* ``mixed``: WRITERS writers that wait for each write (half of them naming themselves as
  HTTP clients and ``gateway write`` do, so that their commits run at once when all of them
  wait; the others as the MQTT reader) and one local-sensor writer that does not (as the I2C,
  GPIO and host readers);
* ``local``: the local-sensor writer alone, so only ``local_sync`` makes its points durable.

ACK_FILE gets a line per write, appended after the write returned:

* ``RUN BATCH LOCALS`` for a waited write (durable then), with the number of local batches
  taken before it started: those rode along with its sync, so they are durable too;
* ``L RUN BATCH TIME`` for a local write (in the store, not yet durable), with its wall time.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gateway.batch import Batch  # noqa: E402
from gateway.config.units import parse_duration, parse_size  # noqa: E402
from gateway.store import Store  # noqa: E402
from store_support import T0, small_config  # noqa: E402

SERIES = 12
LOCAL_SERIES = 3
POINTS_PER_BATCH = 40
LOCAL_POINTS_PER_BATCH = 6
LOCAL_BASE = 100_000          # local batch numbers start here (their own timestamp range)
LOCAL_INTERVAL = 0.005        # seconds between local batches
WRITERS = 4


def crash_config():
    config = small_config(wal_sync=parse_duration("5ms"), head_points=32,
                          checkpoint_interval=parse_duration("50ms"), wal_segment_size=2048,
                          local_sync=parse_duration("200ms"))
    config.buckets["raw"].max_size = parse_size("16MiB")  # never wraps: every ack must stay
    return config


def point(run: int, batch: int, i: int):
    """(series index, time, value) of point i of a batch (a local one from LOCAL_BASE on)."""
    ts = T0 + run * 10**12 + batch * 10**6 + i
    if batch >= LOCAL_BASE:
        s = SERIES + (batch + i) % LOCAL_SERIES
        return s, ts, round(run + (batch - LOCAL_BASE) * 0.01 + i * 0.001, 3)
    s = (batch + i) % SERIES
    if s == 0:
        return s, ts, f"r{run}b{batch}i{i}"
    if s == 1:
        return s, ts, (run * 7919 + batch * 31 + i) * (-1 if i % 2 else 1)
    return s, ts, round(run * 0.5 + batch * 0.01 + i * 0.001 + s, 3)


def key(s: int) -> tuple[str, dict, str]:
    if s >= SERIES:
        return "local", {"bus": f"i2c{s - SERIES}"}, "temp"
    if s == 0:
        return "log", {}, "msg"
    if s == 1:
        return "count", {"k": "x"}, "n"
    return "env", {"sensor": f"s{s}"}, "temp"


def make(run: int, batch: int) -> Batch:
    b = Batch()
    for i in range(LOCAL_POINTS_PER_BATCH if batch >= LOCAL_BASE else POINTS_PER_BATCH):
        s, ts, v = point(run, batch, i)
        m, tags, f = key(s)
        b.add(m, tags, f, v, ts)
    return b


async def main(data_dir: str, ack_path: str, run: int, mode: str) -> None:
    store = Store(data_dir, crash_config())
    await store.open()
    ack = open(ack_path, "a", buffering=1)
    counter = iter(range(LOCAL_BASE))
    locals_taken = 0

    async def writer(sender):
        while True:
            n = next(counter)
            before = locals_taken
            await store.write(make(run, n), sender=sender)
            ack.write(f"{run} {n} {before}\n")

    async def local_writer():
        nonlocal locals_taken
        for n in range(LOCAL_BASE, 2 * LOCAL_BASE):
            await store.write(make(run, n), wait=False)
            locals_taken += 1
            ack.write(f"L {run} {n} {time.time():.6f}\n")
            await asyncio.sleep(LOCAL_INTERVAL)

    waiting = WRITERS if mode == "mixed" else 0
    await asyncio.gather(local_writer(),
                         *(writer(i if i % 2 else None) for i in range(waiting)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]))
