"""Child process of the crash test: writes batches until killed, logging each acknowledgement.

    python crash_writer.py DATA_DIR ACK_FILE RUN

Points are a pure function of (run, batch, index), so the test can tell a point that was
written from one that never was. A line "RUN BATCH" is appended to ACK_FILE after the write
of that batch returned (it is durable then); the line is written before the next batch starts.
"""

from __future__ import annotations

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gateway.batch import Batch  # noqa: E402
from gateway.config.units import parse_duration, parse_size  # noqa: E402
from gateway.store import Store  # noqa: E402
from store_support import T0, small_config  # noqa: E402

SERIES = 12
POINTS_PER_BATCH = 40
WRITERS = 4


def crash_config():
    config = small_config(wal_sync=parse_duration("5ms"), head_points=32,
                          checkpoint_interval=parse_duration("50ms"), wal_segment_size=2048)
    config.buckets["raw"].max_size = parse_size("16MiB")  # never wraps: every ack must stay
    return config


def point(run: int, batch: int, i: int):
    """(series index, time, value) of point i of a batch."""
    s = (batch + i) % SERIES
    ts = T0 + run * 10**12 + batch * 10**6 + i
    if s == 0:
        return s, ts, f"r{run}b{batch}i{i}"
    if s == 1:
        return s, ts, (run * 7919 + batch * 31 + i) * (-1 if i % 2 else 1)
    return s, ts, round(run * 0.5 + batch * 0.01 + i * 0.001 + s, 3)


def key(s: int) -> tuple[str, dict, str]:
    if s == 0:
        return "log", {}, "msg"
    if s == 1:
        return "count", {"k": "x"}, "n"
    return "env", {"sensor": f"s{s}"}, "temp"


def make(run: int, batch: int) -> Batch:
    b = Batch()
    for i in range(POINTS_PER_BATCH):
        s, ts, v = point(run, batch, i)
        m, tags, f = key(s)
        b.add(m, tags, f, v, ts)
    return b


async def main(data_dir: str, ack_path: str, run: int) -> None:
    store = Store(data_dir, crash_config())
    await store.open()
    ack = open(ack_path, "a", buffering=1)
    counter = iter(range(10**9))

    async def writer():
        while True:
            n = next(counter)
            await store.write(make(run, n))
            ack.write(f"{run} {n}\n")

    await asyncio.gather(*(writer() for _ in range(WRITERS)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
