"""Store benchmark: one day of 1 Hz data from 120 series, loaded as line protocol.

Workload: 100 float series (random walks at 0.01 resolution) and 20 integer counters, one
point per second for 24 h (10,368,000 points), loaded in batches of 5,000 lines with the
store's default durability (every write is acknowledged only after the group commit that
holds it is synced). Prints ingest points/s, bytes on disk per point, bytes written to disk
per point (``/proc/self/io`` write_bytes during the load), peak RSS, and the time of a
10-minute-window mean over the whole day for all 100 float series. Median of --runs.

    python benchmarks/store.py [--runs 3] [--order time|series] [--counters bytes|events]
                               [--concurrency 24]

The line protocol file is generated once (in a child process, so its memory does not count)
and cached in the temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

SERIES_FLOAT = 100
SERIES_COUNTER = 20
SECONDS = 86400
BATCH_LINES = 5000
T0 = 1_700_000_000 * 10**9
WINDOW_NS = 600 * 10**9

REFERENCE = [
    ("InfluxDB 1.6.7 (HTTP)", "1.09 M", "255 MB", "8.0", "2.35"),
    ("VictoriaMetrics 1.79 (no WAL)", "2.8 M", "143 MB", "0.66", "0.32"),
    ("RRDtool", "0.84 M", "30 MB", "-", "8"),
]


def generate(path: str, order: str, counters_kind: str) -> None:
    """Writes the day as line protocol (one point per line). Runs in a child process.

    Float series step by -0.02..+0.02 a second (0 three times in seven); counters grow by a
    uniform 0..1999 a second (byte counters: about 11 bits of entropy a point) or, with
    counters_kind "events", by a Poisson(20) count (about 4 bits)."""
    import numpy as np

    rng = np.random.default_rng(20240601)
    steps = rng.choice([-2, -1, 0, 0, 0, 1, 2], size=(SERIES_FLOAT, SECONDS))
    start = rng.integers(1000, 3000, size=(SERIES_FLOAT, 1))
    walks = start + np.cumsum(steps, axis=1)                       # hundredths
    if counters_kind == "bytes":
        increments = rng.integers(0, 2000, size=(SERIES_COUNTER, SECONDS))
    else:
        increments = rng.poisson(20, size=(SERIES_COUNTER, SECONDS))
    counters = np.cumsum(increments, axis=1)
    float_keys = [f"env,sensor=s{i:03d} temp=" for i in range(SERIES_FLOAT)]
    counter_keys = [f"net,if=eth{i:02d} rx_bytes=" for i in range(SERIES_COUNTER)]

    def fmt_float(h: int) -> str:
        sign = "-" if h < 0 else ""
        h = abs(int(h))
        return f"{sign}{h // 100}.{h % 100:02d}"

    with open(path + ".tmp", "w") as f:
        if order == "time":
            for t in range(SECONDS):
                ts = T0 + t * 10**9
                lines = [f"{float_keys[i]}{fmt_float(walks[i, t])} {ts}\n" for i in range(SERIES_FLOAT)]
                lines += [f"{counter_keys[i]}{counters[i, t]}i {ts}\n" for i in range(SERIES_COUNTER)]
                f.write("".join(lines))
        else:
            for i in range(SERIES_FLOAT):
                f.write("".join(f"{float_keys[i]}{fmt_float(walks[i, t])} {T0 + t * 10**9}\n"
                                for t in range(SECONDS)))
            for i in range(SERIES_COUNTER):
                f.write("".join(f"{counter_keys[i]}{counters[i, t]}i {T0 + t * 10**9}\n"
                                for t in range(SECONDS)))
    os.replace(path + ".tmp", path)


def batch_offsets(path: str) -> list[int]:
    """Byte offsets that cut the file into batches of BATCH_LINES lines."""
    offsets = [0]
    count = 0
    pos = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 24)
            if not chunk:
                break
            i = -1
            while True:
                i = chunk.find(b"\n", i + 1)
                if i < 0:
                    break
                count += 1
                if count == BATCH_LINES:
                    offsets.append(pos + i + 1)
                    count = 0
            pos += len(chunk)
    if offsets[-1] != pos:
        offsets.append(pos)
    return offsets


def io_write_bytes() -> int:
    with open("/proc/self/io") as f:
        for line in f:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    return 0


def dir_bytes(path: str) -> int:
    """Bytes the store's data occupies: ring entries in use (not the preallocation), index, WAL."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            if name != "ring":
                total += os.path.getsize(os.path.join(root, name))
    return total


async def run_once(lp_path: str, offsets: list[int], concurrency: int) -> dict:
    from gateway.config.model import StoreSection
    from gateway.config.units import parse_size
    from gateway.lineprotocol import parse
    from gateway.store import Store

    data_dir = tempfile.mkdtemp(prefix="gw-bench-store-", dir=os.path.dirname(lp_path))
    try:
        config = StoreSection()
        config.buckets["raw"].max_size = parse_size("64MiB")
        config.buckets["raw"].retention = None
        config.buckets["rollup"].max_size = parse_size("1MiB")
        store = Store(data_dir, config, clock=lambda: T0 + SECONDS * 10**9)
        await store.open()
        slots = asyncio.Semaphore(concurrency)
        errors: list[BaseException] = []

        async def write(batch) -> None:
            try:
                await store.write(batch)
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)
            finally:
                slots.release()

        written_before = io_write_bytes()
        t0 = time.perf_counter()
        tasks = set()
        points = 0
        with open(lp_path, "rb") as f:
            for a, b in zip(offsets, offsets[1:]):
                await slots.acquire()
                result = parse(f.read(b - a))
                points += result.points
                task = asyncio.get_running_loop().create_task(write(result.batch))
                del result
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        ingest_s = time.perf_counter() - t0
        await store.flush()  # the last blocks go to the index; part of what a load costs
        written = io_write_bytes() - written_before
        if errors:
            raise errors[0]
        stats = store.stats("raw")["raw"]
        on_disk = stats["used_bytes"] + dir_bytes(data_dir)
        breakdown = {"ring": stats["used_bytes"], "wal": stats["wal_bytes"],
                     "index": os.path.getsize(os.path.join(data_dir, "store", "index.sqlite"))}

        t1 = time.perf_counter()
        means = 0
        for info in store.series("raw", measurement="env"):
            cols = await store.scan_series(info.key, "raw", T0, T0 + SECONDS * 10**9)
            means += len(window_means(cols.timestamps, cols.values))
        query_s = time.perf_counter() - t1
        await store.close()
        # The parser alone on the same input, for reading the ingest figure.
        t2 = time.perf_counter()
        with open(lp_path, "rb") as f:
            for a, b in zip(offsets, offsets[1:]):
                parse(f.read(b - a))
        parse_s = time.perf_counter() - t2
        return {"points": points, "ingest_s": ingest_s, "written": written, "on_disk": on_disk,
                "query_s": query_s, "windows": means, "breakdown": breakdown,
                "parse_s": parse_s,
                "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def window_means(timestamps, values):
    """Mean of each 10-minute window (aligned to the epoch), by the C aggregation kernel."""
    from gateway.aggregate import window_aggregate

    return window_aggregate(timestamps, values, WINDOW_NS).mean


def child(args) -> None:
    offsets = batch_offsets(args.lp)
    result = asyncio.run(run_once(args.lp, offsets, args.concurrency))
    print(json.dumps(result))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--order", choices=("time", "series"), default="time",
                   help="time: every second's 120 lines together (a live gateway); series: "
                        "each series' whole day in turn (an import of an export)")
    p.add_argument("--counters", choices=("bytes", "events"), default="bytes",
                   help="bytes: counters grow by uniform 0..1999 a second; events: by Poisson(20)")
    p.add_argument("--concurrency", type=int, default=24,
                   help="writes in flight (as from several readers / HTTP clients)")
    p.add_argument("--dir", default=tempfile.gettempdir())
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--lp", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return 0
    lp = os.path.join(args.dir, f"gateway-bench-store-{args.order}-{args.counters}.lp")
    if not os.path.exists(lp):
        print(f"generating {lp} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-c",
                        f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); "
                        f"import store; store.generate({lp!r}, {args.order!r}, {args.counters!r})"],
                       check=True)
    runs = []
    for i in range(args.runs):
        out = subprocess.run([sys.executable, __file__, "--child", "--lp", lp,
                              "--concurrency", str(args.concurrency)],
                             check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        runs.append(r)
        print(f"run {i + 1}: {r['points'] / r['ingest_s'] / 1e6:.2f} M points/s, "
              f"{r['written'] / r['points']:.3f} B written/pt, "
              f"{r['on_disk'] / r['points']:.3f} B/pt on disk, {r['rss'] / 2**20:.0f} MB peak RSS, "
              f"query {r['query_s']:.2f} s; on disk: " + ", ".join(
                  f"{k} {v / r['points']:.3f}" for k, v in r["breakdown"].items()), file=sys.stderr)
    med = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
    points = runs[0]["points"]
    print(f"\nStore, {points:,} points ({SERIES_FLOAT} float random walks at 0.01 + "
          f"{SERIES_COUNTER} integer counters ({args.counters}), 1 Hz for 24 h), batches of "
          f"{BATCH_LINES} lines, order={args.order}, {args.concurrency} writes in flight, "
          f"median of {len(runs)}")
    print(f"{'system':32} {'ingest pts/s':>13} {'peak RSS':>9} {'B written/pt':>13} {'B/pt on disk':>13}")
    print(f"{'this store (durable, synced)':32} {points / med('ingest_s') / 1e6:>11.2f} M "
          f"{med('rss') / 2**20:>6.0f} MB {med('written') / points:>13.3f} {med('on_disk') / points:>13.3f}")
    for name, rate, rss, written, disk in REFERENCE:
        print(f"{name:32} {rate:>13} {rss:>9} {written:>13} {disk:>13}")
    print(f"\n10-minute-window mean over the day, {SERIES_FLOAT} series "
          f"({runs[0]['windows']} windows): {med('query_s'):.2f} s (scan + decode + mean)")
    parts = {k: statistics.median(r["breakdown"][k] for r in runs) / points
             for k in runs[0]["breakdown"]}
    print("on disk per point: " + ", ".join(f"{k} {v:.3f} B" for k, v in parts.items())
          + " (the ring's share is the codec's block size plus 32-byte entry headers)")
    print(f"ingest = line protocol parsing + store; the parser alone: "
          f"{points / med('parse_s') / 1e6:.2f} M points/s on the same input")
    print("machine: 2 vCPU shared with other work while measuring; figures vary run to run")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
