"""Store benchmark: bulk loading, writers that wait for each acknowledgement, and a live trickle.

Cases (``--case``):

* ``day`` (default): one day of 1 Hz data from 120 series, loaded as line protocol.
* ``waiting``: 2 and 8 writers (``--writers``) that each send a 5,000-line batch, wait for its
  acknowledgement and send the next (Telegraf, ``influxdb-client``, ``gateway write``), for
  ``--seconds`` each; the same day of data.
* ``trickle``: a live gateway: 120 series at 1 Hz, one write a second in real time for
  ``--trickle-minutes`` (default 10). ``--path ack`` writes as MQTT and HTTP do (each write
  waits for durability); ``--path local`` as the I2C, GPIO and host readers do
  (``Batch.from_points``, nobody waits for the write), with the timestamps rounded as those
  readers round them at a 1 s interval (``--precision``).

Every case prints points/s, bytes written per point: by the store to its files (before the
page cache), by the process (``/proc/self/io``: whole pages) and by the block device holding
the data directory (``/sys/dev/block/*/stat``), and file syncs per minute. The device figure counts every writer of that device: give ``--loop-ext4 MB`` (root) to
run each case on an ext4 file of its own, loop-mounted under /tmp and unmounted afterwards.

Day workload: 100 float series (random walks at 0.01 resolution) and 20 integer counters, one
point per second for 24 h (10,368,000 points), loaded in batches of 5,000 lines with the
store's default durability (every write is acknowledged only after the group commit that
holds it is synced). Prints ingest points/s, bytes on disk per point, bytes written to disk
per point (``/proc/self/io`` write_bytes during the load), peak RSS, and the time of a
10-minute-window mean over the whole day for all 100 float series. Median of --runs.

    python benchmarks/store.py [--runs 3] [--order time|series] [--counters bytes|events]
                               [--concurrency 24]
    python benchmarks/store.py --case waiting [--writers 2 8] [--seconds 15] [--loop-ext4 512]
    python benchmarks/store.py --case waiting [--writers 1] [--batch-lines 1000]
    python benchmarks/store.py --case trickle [--path ack|local] [--trickle-minutes 10]
                               [--precision i2c|host|ns|DURATION]

The line protocol file is generated once (in a child process, so its memory does not count)
and cached in the temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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


def batch_offsets(path: str, batch_lines: int = BATCH_LINES) -> list[int]:
    """Byte offsets that cut the file into batches of ``batch_lines`` lines."""
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
                if count == batch_lines:
                    offsets.append(pos + i + 1)
                    count = 0
            pos += len(chunk)
    if offsets[-1] != pos:
        offsets.append(pos)
    return offsets


def io_write_bytes() -> int:
    from gateway.diskio import process_write_bytes

    return process_write_bytes() or 0


class WriteMeter:
    """What a case costs the storage: bytes written by this process and by the block device of
    the data directory, and the store's file syncs (WAL and ring), between start() and stop()."""

    def __init__(self, store, data_dir: str) -> None:
        from gateway.diskio import block_device_stat

        self.device = block_device_stat(data_dir)
        self.store = store
        self.syncs = 0
        for b in store.buckets.values():
            for f in (b.wal, b.ring):
                f.sync = self._counted(f.sync)

    def _counted(self, sync):
        def counted():
            self.syncs += 1
            return sync()
        return counted

    def start(self) -> None:
        from gateway.diskio import device_write_bytes

        self.t0 = time.perf_counter()
        self.process0 = io_write_bytes()
        self.device0 = device_write_bytes(self.device)
        self.syncs0 = self.syncs
        self.files0 = self.files_written()

    def files_written(self) -> int:
        """Bytes the store wrote to its WAL and ring files (before the page cache)."""
        return sum(b.wal.bytes_written + b.ring.bytes_written for b in self.store.buckets.values())

    def stop(self) -> dict:
        from gateway.diskio import device_write_bytes

        os.sync()  # what the page cache still holds is part of the cost
        device = device_write_bytes(self.device)
        return {"seconds": time.perf_counter() - self.t0,
                "process_written": io_write_bytes() - self.process0,
                "device_written": None if device is None else device - self.device0,
                "syncs": self.syncs - self.syncs0,
                "files_written": self.files_written() - self.files0}


def bench_config(retention_none: bool = True):
    from gateway.config.model import StoreSection
    from gateway.config.units import parse_size

    config = StoreSection()
    config.buckets["raw"].max_size = parse_size("64MiB")
    if retention_none:
        config.buckets["raw"].retention = None
    config.buckets["rollup"].max_size = parse_size("1MiB")
    return config


def dir_bytes(path: str) -> int:
    """Bytes the store's data occupies: ring entries in use (not the preallocation), index, WAL."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            if name != "ring":
                total += os.path.getsize(os.path.join(root, name))
    return total


async def run_once(lp_path: str, offsets: list[int], concurrency: int, parent: str) -> dict:
    from gateway.lineprotocol import parse
    from gateway.store import Store

    data_dir = tempfile.mkdtemp(prefix="gw-bench-store-", dir=parent)
    try:
        store = Store(data_dir, bench_config(), clock=lambda: T0 + SECONDS * 10**9)
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

        meter = WriteMeter(store, data_dir)
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
        wal_written = sum(b.wal.bytes_written for b in store.buckets.values())
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
                "parse_s": parse_s, "syncs": meter.syncs, "wal_written": wal_written,
                "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def window_means(timestamps, values):
    """Mean of each 10-minute window (aligned to the epoch), by the C aggregation kernel."""
    from gateway.aggregate import window_aggregate

    return window_aggregate(timestamps, values, WINDOW_NS).mean


async def run_waiting(lp_path: str, offsets: list[int], writers: int, seconds: float,
                      parent: str) -> dict:
    """``writers`` writers, each sending a batch and waiting for it before the next."""
    import inspect

    from gateway.lineprotocol import parse
    from gateway.store import Store

    data_dir = tempfile.mkdtemp(prefix="gw-bench-store-", dir=parent)
    try:
        store = Store(data_dir, bench_config(), clock=lambda: T0 + SECONDS * 10**9)
        await store.open()
        meter = WriteMeter(store, data_dir)
        signature = inspect.signature(store.write).parameters
        batches = iter(zip(offsets, offsets[1:]))
        points = 0
        with open(lp_path, "rb") as f:
            meter.start()
            deadline = time.perf_counter() + seconds

            async def writer(sender: int) -> None:
                nonlocal points
                # Each writer says who it is, as the HTTP API does with its connections.
                kw = {"sender": sender} if "sender" in signature else {}
                for a, b in batches:
                    f.seek(a)
                    result = parse(f.read(b - a))
                    await store.write(result.batch, **kw)
                    points += result.points
                    if time.perf_counter() >= deadline:
                        return

            await asyncio.gather(*(writer(i) for i in range(writers)))
            cost = meter.stop()
        await store.close()
        return {"points": points, **cost}
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def trickle_values(rng, walks: list[int], counters: list[int]) -> None:
    """One second of the day workload's 120 series, advanced in place."""
    for i in range(len(walks)):
        walks[i] += rng.choice((-2, -1, 0, 0, 0, 1, 2))
    for i in range(len(counters)):
        counters[i] += rng.randrange(2000)


def trickle_precision_ns(precision: str) -> int:
    """The nanoseconds the local trickle's timestamps are rounded to: the clock's own (``ns``),
    what the I2C or host reader derives for a 1 s interval (``i2c``, ``host``), or a duration."""
    from gateway.config.units import parse_duration

    if precision == "ns":
        return 1
    if precision == "i2c":
        from gateway.readers.i2c.config import Config, SensorConfig

        sensor = SensorConfig(part="bme280", interval=parse_duration("1s"))
        return Config(sensors=[sensor]).precision_of(sensor).ns
    if precision == "host":
        from gateway.readers.host.config import Config

        return Config(interval=parse_duration("1s")).effective_precision.ns
    return parse_duration(precision).ns


async def run_trickle(path: str, minutes: float, parent: str, precision: str = "ns") -> dict:
    """120 series at 1 Hz in real time: one write a second, as MQTT (``ack``: the write waits
    for durability) or as the local readers write (``local``: timestamps rounded to the
    readers' precision, ``Batch.from_points``, nobody waits)."""
    import inspect
    import random

    from gateway.batch import Batch, Point
    from gateway.lineprotocol import parse
    from gateway.readers.precision import rounded
    from gateway.store import Store

    precision_ns = trickle_precision_ns(precision)
    data_dir = tempfile.mkdtemp(prefix="gw-bench-store-", dir=parent)
    try:
        store = Store(data_dir, bench_config(retention_none=False))
        await store.open()
        local_kw = ({"wait": False} if "wait" in inspect.signature(store.write).parameters
                    else {})   # stores before the wait flag: every write waits
        meter = WriteMeter(store, data_dir)
        rng = random.Random(20240601)
        walks = [rng.randrange(1000, 3000) for _ in range(SERIES_FLOAT)]
        counters = [0] * SERIES_COUNTER
        pending = set()
        points = 0
        meter.start()
        start = time.monotonic()
        for second in range(int(minutes * 60)):
            await asyncio.sleep(max(0.0, start + second - time.monotonic()))
            trickle_values(rng, walks, counters)
            ts = rounded(time.time_ns(), precision_ns)
            if path == "ack":
                lines = [f"env,sensor=s{i:03d} temp={w / 100} {ts}" for i, w in enumerate(walks)]
                lines += [f"net,if=eth{i:02d} rx_bytes={c}i {ts}" for i, c in enumerate(counters)]
                result = parse("\n".join(lines).encode())
                batch, n = result.batch, result.points
                task = asyncio.get_running_loop().create_task(store.write(batch))
            else:
                pts = [Point("env", {"temp": w / 100}, {"sensor": f"s{i:03d}"}, ts)
                       for i, w in enumerate(walks)]
                pts += [Point("net", {"rx_bytes": c}, {"if": f"eth{i:02d}"}, ts)
                        for i, c in enumerate(counters)]
                batch, n = Batch.from_points(pts), len(pts)
                task = asyncio.get_running_loop().create_task(store.write(batch, **local_kw))
            pending.add(task)
            task.add_done_callback(pending.discard)
            points += n
        await asyncio.gather(*pending)
        cost = meter.stop()
        await store.close()
        return {"points": points, **cost}
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def child(args) -> None:
    if args.case == "trickle":
        result = asyncio.run(run_trickle(args.path, args.trickle_minutes, args.data_parent,
                                         args.precision))
    elif args.case == "waiting":
        offsets = batch_offsets(args.lp, args.batch_lines)
        result = asyncio.run(run_waiting(args.lp, offsets, args.writers[0], args.seconds,
                                         args.data_parent))
    else:
        offsets = batch_offsets(args.lp)
        result = asyncio.run(run_once(args.lp, offsets, args.concurrency, args.data_parent))
    print(json.dumps(result))


@contextlib.contextmanager
def data_parent(args):
    """The directory the case's store goes in: a fresh loop-mounted ext4 with --loop-ext4."""
    if not args.loop_ext4:
        yield args.dir
        return
    base = tempfile.mkdtemp(prefix="gw-bench-ext4-", dir="/tmp")
    image, mnt = os.path.join(base, "fs.img"), os.path.join(base, "mnt")
    os.mkdir(mnt)
    mounted = False
    try:
        with open(image, "wb") as f:
            f.truncate(args.loop_ext4 << 20)
        subprocess.run(["mkfs.ext4", "-q", "-F", image], check=True)
        subprocess.run(["mount", "-o", "loop", image, mnt], check=True)
        mounted = True
        yield mnt
    finally:
        if mounted:
            subprocess.run(["umount", mnt], check=True)
        shutil.rmtree(base, ignore_errors=True)


def cost_row(label: str, r: dict) -> str:
    pts = r["points"] or 1
    minutes = r["seconds"] / 60
    device = "-" if r["device_written"] is None else f"{r['device_written'] / pts:.2f}"
    return (f"{label:34} {r['points'] / r['seconds']:>12,.0f} {r['files_written'] / pts:>10.2f} "
            f"{r['process_written'] / pts:>10.2f} {device:>10} {r['syncs'] / minutes:>9.1f}")


COST_HEADER = (f"{'case':34} {'points/s':>12} {'B/pt files':>10} {'B/pt proc':>10} "
               f"{'B/pt dev':>10} {'syncs/min':>9}")


def run_child(args, lp: str | None, extra: list[str]) -> dict:
    with data_parent(args) as parent:
        cmd = [sys.executable, __file__, "--child", "--case", args.case, "--data-parent", parent,
               *extra]
        if lp:
            cmd += ["--lp", lp]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main_costs(args, lp: str | None) -> int:
    rows = []
    if args.case == "waiting":
        for n in args.writers:
            r = run_child(args, lp, ["--writers", str(n), "--seconds", str(args.seconds),
                                     "--batch-lines", str(args.batch_lines)])
            rows.append((f"{n} waiting writers, {args.batch_lines:,}-line batches", r))
    else:
        r = run_child(args, None, ["--path", args.path,
                                   "--trickle-minutes", str(args.trickle_minutes),
                                   "--precision", args.precision])
        what = ("acknowledged (MQTT, HTTP)" if args.path == "ack"
                else f"local readers, precision {args.precision}")
        rows.append((f"trickle, {what}", r))
    print(f"\nStore, {args.case}: default [store] settings (wal_sync 1s), "
          + ("device: a loop-mounted ext4 of its own" if args.loop_ext4
             else f"device: whatever holds {args.dir} (shared with other writers)"))
    print(COST_HEADER)
    for label, r in rows:
        print(cost_row(label, r))
    if args.case == "trickle":
        r = rows[0][1]
        print(f"{r['points']:,} points in {r['seconds'] / 60:.1f} min "
              f"({SERIES_FLOAT + SERIES_COUNTER} series at 1 Hz)")
    print("machine: 2 vCPU shared with other work while measuring; figures vary run to run")
    return 0


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
    p.add_argument("--case", choices=("day", "waiting", "trickle"), default="day")
    p.add_argument("--writers", type=int, nargs="+", default=[2, 8],
                   help="waiting: writer counts to measure")
    p.add_argument("--seconds", type=float, default=15.0, help="waiting: seconds per writer count")
    p.add_argument("--path", choices=("ack", "local"), default="ack",
                   help="trickle: ack = each write waits for durability (MQTT, HTTP); local = "
                        "written as the I2C, GPIO and host readers write")
    p.add_argument("--trickle-minutes", type=float, default=10.0)
    p.add_argument("--precision", default="i2c",
                   help="trickle, local: the timestamps' precision: i2c or host (what that "
                        "reader derives for a 1 s interval: 1ms, 1s), ns (the clock's own, "
                        "whose jitter costs the WAL bytes) or a duration")
    p.add_argument("--batch-lines", type=int, default=BATCH_LINES,
                   help="waiting: lines per batch (Telegraf sends 1,000 by default)")
    p.add_argument("--loop-ext4", type=int, metavar="MB", default=0,
                   help="run each case on a loop-mounted ext4 file of this size (needs root), "
                        "so the block device's counters are the case's alone")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--lp", help=argparse.SUPPRESS)
    p.add_argument("--data-parent", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return 0
    if args.case == "trickle":
        return main_costs(args, None)
    lp = os.path.join(args.dir, f"gateway-bench-store-{args.order}-{args.counters}.lp")
    if not os.path.exists(lp):
        print(f"generating {lp} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-c",
                        f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); "
                        f"import store; store.generate({lp!r}, {args.order!r}, {args.counters!r})"],
                       check=True)
    if args.case == "waiting":
        return main_costs(args, lp)
    runs = []
    for i in range(args.runs):
        r = run_child(args, lp, ["--concurrency", str(args.concurrency)])
        runs.append(r)
        print(f"run {i + 1}: {r['points'] / r['ingest_s'] / 1e6:.2f} M points/s, "
              f"{r['written'] / r['points']:.3f} B written/pt, "
              f"{r['on_disk'] / r['points']:.3f} B/pt on disk, {r['rss'] / 2**20:.0f} MB peak RSS, "
              f"query {r['query_s']:.2f} s, {r['syncs']} syncs, WAL written "
              f"{r['wal_written'] / r['points']:.3f} B/pt; on disk: " + ", ".join(
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
