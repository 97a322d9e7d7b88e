"""Replication benchmark: backlog drain to VictoriaMetrics against its own bulk-ingest rate,
and the latency from durable write to upstream acknowledgement with the link up.

Starts Debian's victoria-metrics on a free loopback port (temp dir, stopped by PID), then:

  bulk     VictoriaMetrics' own rate: the same points as line protocol in 5,000-line POSTs to
           /api/v2/write from one client (uncompressed), in this run
  drain    a store holding HOURS x SERIES points at 1 Hz (written while no stream runs, then
           sealed) drained by an influxdb_v2 stream, once per gzip level given (a stream
           each): points/s, bytes on the wire per point, gateway CPU (this process) and
           VictoriaMetrics' CPU per point, and where the drain's wall time went (reads from
           the store, line protocol, gzip, the upstream's answers, position writes, time the
           sender had nothing to send) with the gateway's CPU by thread
  latency  SERIES_LIVE series at 1 Hz written for SECONDS with the stream running: percentiles
           of (upstream acknowledgement - durable write) per point, against flush_interval

Both VictoriaMetrics and the gateway share the machine's cores; the figures say so.
Run: .venv/bin/python benchmarks/replication.py [--hours 24] [--series 120] [--gzip 1,6]
     [--batch-bytes 500kB] [--latency-seconds 60] [--flush 10s]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import pathlib
import statistics
import sys
import tempfile
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the repo: hil.rigs.upstreams

from hil.rigs.upstreams import VictoriaMetrics, http as http_call  # noqa: E402

from gateway import config as cfg  # noqa: E402
from gateway.batch import Batch  # noqa: E402
from gateway.config.model import BucketConfig, StoreSection  # noqa: E402
from gateway.config.units import parse_duration, parse_size  # noqa: E402
from gateway.replication import gzip_bodies  # noqa: E402
from gateway.replication.stream import ReplicationStream  # noqa: E402
from gateway.store import Store  # noqa: E402

SECOND = 1_000_000_000
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def thread_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of each live thread of this process, by thread name."""
    out: dict[str, float] = {}
    for t in threading.enumerate():
        try:
            with open(f"/proc/self/task/{t.native_id}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, TypeError):
            continue
        out[t.name] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return out


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of another process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class Breakdown:
    """Where a drain's wall time goes: each stage's calls and wall seconds, timed by wrapping
    the stream's public pieces (reads from the store, encoding, compressing, the upstream's
    answers, position writes)."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()
        self._wrapped: list[tuple[object, str]] = []

    def _add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.wall[stage] = self.wall.get(stage, 0.0) + seconds
            self.calls[stage] = self.calls.get(stage, 0) + 1

    def wrap(self, owner, name: str, stage: str) -> None:
        fn = getattr(owner, name)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._add(stage, time.perf_counter() - t0)
        setattr(owner, name, timed)
        self._wrapped.append((owner, name))

    def wrap_async(self, owner, name: str, stage: str) -> None:
        fn = getattr(owner, name)

        async def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                self._add(stage, time.perf_counter() - t0)
        setattr(owner, name, timed)
        self._wrapped.append((owner, name))

    def unwrap(self) -> None:
        for owner, name in self._wrapped:
            delattr(owner, name)  # the class's own method shows through again
        self._wrapped.clear()


#: The drain's stages as the breakdown names them.
STAGES = {
    "read": "reading blocks from the store (event loop awaiting the read thread)",
    "encode": "formatting line protocol (encoder thread)",
    "compress": "gzip (encoder thread)",
    "deliver": "sending a batch's bodies until acknowledged (sender thread)",
    "upstream": "  of which POSTs: upload and the upstream's answer",
    "position": "writing the position (the position file's sync)",
}


def store_config(points: int) -> StoreSection:
    config = StoreSection(wal_sync="always")  # the fill commits each minute of points at once
    size = max(parse_size("64MiB"), parse_size(f"{int(points * 3 // 1024 + 1024)}KiB"))
    config.buckets = {"raw": BucketConfig(size, None), "rollup": BucketConfig(parse_size("1MiB"), None)}
    config.checkpoint_interval = parse_duration("2s")
    return config


def stream(url: str, gzip_level: int | None, flush: str, name: str = "bench",
           batch_bytes: str | None = None):
    """An influxdb_v2 stream of the raw bucket (gzip level, batch bytes None: the defaults)."""
    text = (f'[[replication]]\nname = "{name}"\nkind = "influxdb_v2"\nurl = "{url}"\norg = "o"\n'
            f'bucket = "{name}"\nbuckets = ["raw"]\nflush_interval = "{flush}"\n')
    if batch_bytes is not None:
        text += f'batch_bytes = "{batch_bytes}"\n'
    if gzip_level is not None:
        text += f"gzip_level = {gzip_level}\n"
    return cfg.load_text(text).replication[0]


def value(s: int, i: int) -> float:
    return round(20.0 + s * 0.1 + ((i * 7919 + s * 104729) % 2000) / 100, 2)


async def fill(store, series: int, seconds: int, start: int) -> None:
    """seconds x series points at 1 Hz, written ten minutes at a time."""
    for t0 in range(0, seconds, 600):
        batch = Batch()
        for i in range(t0, min(seconds, t0 + 600)):
            for s in range(series):
                batch.add("bench", {"sensor": f"s{s:03d}"}, "v", value(s, i), start + i * SECOND)
        await store.write(batch)


def bulk_rate(vm: VictoriaMetrics, series: int, seconds: int, start: int) -> tuple[float, float]:
    """Points/s VictoriaMetrics takes in 5,000-line POSTs (line protocol built beforehand), and
    its CPU microseconds a point."""
    lines, bodies = [], []
    for i in range(seconds):
        for s in range(series):
            lines.append(f"bulk,sensor=s{s:03d} v={value(s, i)} {start + i * SECOND}\n")
            if len(lines) == 5000:
                bodies.append("".join(lines).encode())
                lines = []
    if lines:
        bodies.append("".join(lines).encode())
    conn = http.client.HTTPConnection("127.0.0.1", vm.port, timeout=60)
    vm0, began = process_cpu(vm.proc.pid), time.perf_counter()
    for body in bodies:
        conn.request("POST", "/api/v2/write?bucket=bulk", body=body)
        r = conn.getresponse()
        r.read()
        assert r.status == 204, r.status
    elapsed, vm_cpu = time.perf_counter() - began, process_cpu(vm.proc.pid) - vm0
    return series * seconds / elapsed, vm_cpu / (series * seconds) * 1e6


async def drain(data_dir: str, vm, series: int, seconds: int, levels: list[int],
                start: int, batch_bytes: str | None) -> tuple[float, list[dict]]:
    """Fills one store, then drains it once per gzip level (a stream each, so each starts
    at the oldest block and sends to its own VictoriaMetrics bucket label)."""
    points = series * seconds
    store = await Store(data_dir, store_config(points)).open()
    began = time.perf_counter()
    await fill(store, series, seconds, start)
    await store.flush(seal=True)
    fill_s = time.perf_counter() - began
    runs = []
    for level in levels:
        s = ReplicationStream(stream(vm.url, level, "1s", f"gzip{level}", batch_bytes), store)
        times = Breakdown()
        times.wrap_async(s.source, "sealed_after", "read")
        times.wrap_async(store, "set_replication_cursor", "position")
        threads0, vm0 = thread_cpu(), process_cpu(vm.proc.pid)
        cpu0, t0 = time.process_time(), time.perf_counter()
        await s.start()
        # the sender exists once the stream started; its loop has not run yet
        times.wrap(s.sender, "encode", "encode")
        times.wrap(s.sender, "compress", "compress")
        times.wrap(s.sender, "deliver", "deliver")
        times.wrap(s.sender.upstream, "post", "upstream")
        while s.status.counters["points_sent"] < points:
            if s.status.last_error and s.status.state == "backing_off":
                raise SystemExit(f"drain failed: {s.status.last_error}")
            await asyncio.sleep(0.05)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        threads1, vm_cpu = thread_cpu(), process_cpu(vm.proc.pid) - vm0
        counters = dict(s.status.counters)
        await s.stop()
        times.unwrap()
        by_thread: dict[str, float] = {}
        for name, seconds in threads1.items():
            role = ("encoder" if name.endswith("-encode_0") else
                    "sender" if name.startswith("gateway-replication-") else
                    "store read" if name.startswith("gateway-store-read") else
                    "event loop" if name == "MainThread" else "other")
            by_thread[role] = by_thread.get(role, 0.0) + seconds - threads0.get(name, 0.0)
        runs.append({"level": level, "seconds": elapsed, "rate": points / elapsed,
                     "cpu_us_per_point": cpu / points * 1e6,
                     "vm_cpu_us_per_point": vm_cpu / points * 1e6,
                     "wire_bytes_per_point": counters["bytes_sent"] / counters["points_sent"],
                     "requests": counters["requests"], "wall": times.wall, "calls": times.calls,
                     "threads": by_thread})
    await store.close()
    return fill_s, runs


async def latency(data_dir: str, vm, series: int, seconds: int, flush: str) -> list[float]:
    store = await Store(data_dir, StoreSection()).open()
    s = ReplicationStream(stream(vm.url, None, flush), store)
    durable_at: dict[int, float] = {}
    acked_at: dict[int, float] = {}
    sender_deliver = None

    await s.start()
    sender_deliver = s.sender.deliver

    def deliver(bucket, bodies):  # notes when each second's points were acknowledged
        sender_deliver(bucket, bodies)
        now = time.time()
        for body in bodies:
            for line in body.data.splitlines():
                ts = int(line.rsplit(b" ", 1)[1])
                acked_at.setdefault(ts, now)

    s.sender.deliver = deliver
    start = (time.time_ns() // SECOND) * SECOND
    for i in range(seconds):
        ts = start + i * SECOND
        delay = ts / 1e9 - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        batch = Batch()
        for k in range(series):
            batch.add("live", {"sensor": f"s{k:03d}"}, "v", value(k, i), ts)
        await store.write(batch)
        durable_at[ts] = time.time()
    deadline = time.time() + float(parse_duration(flush)) + 30
    while len(acked_at) < len(durable_at) and time.time() < deadline:
        await asyncio.sleep(0.1)
    await s.stop()
    await store.close()
    return [acked_at[t] - durable_at[t] for t in durable_at if t in acked_at]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hours", type=float, default=24)
    p.add_argument("--series", type=int, default=120)
    p.add_argument("--gzip", default="1,6", help="gzip levels to drain with, comma-separated")
    p.add_argument("--batch-bytes", default=None, help="the drain's batch_bytes (default: "
                   "the stream's default)")
    p.add_argument("--latency-seconds", type=int, default=60)
    p.add_argument("--latency-series", type=int, default=100)
    p.add_argument("--flush", default="10s")
    args = p.parse_args()
    seconds = int(args.hours * 3600)
    levels = [int(x) for x in args.gzip.split(",")]
    points = args.series * seconds
    start = (time.time_ns() // SECOND - seconds - 7200) * SECOND
    with tempfile.TemporaryDirectory() as tmp:
        vm = VictoriaMetrics(pathlib.Path(tmp) / "vm")
        vm.start()
        try:
            load = os.getloadavg()
            bulk, bulk_vm_cpu = bulk_rate(vm, args.series, seconds, start)
            fill_s, runs = asyncio.run(drain(os.path.join(tmp, "drain"), vm, args.series, seconds,
                                             levels, start, args.batch_bytes))
            lat = asyncio.run(latency(os.path.join(tmp, "live"), vm, args.latency_series,
                                      args.latency_seconds, args.flush))
            load_end = os.getloadavg()
        finally:
            vm.stop()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, at the end: "
          f"{load_end[0]:.2f} on {os.cpu_count()} cores shared by VictoriaMetrics, the gateway "
          f"and whatever else runs")
    print()
    print(f"{'backlog':<28}{points:>12,} points ({args.hours:g} h x {args.series} series at 1 Hz), "
          f"written in {fill_s:.1f} s")
    print(f"{'drain batches':<28}batch_bytes {args.batch_bytes or 'default'}, gzip by "
          f"{gzip_bodies.BACKEND}")
    print(f"{'VictoriaMetrics bulk':<28}{bulk:>12,.0f} points/s (5,000-line POSTs, uncompressed), "
          f"VictoriaMetrics CPU {bulk_vm_cpu:.2f} us a point")
    print()
    print(f"{'gateway drain':<16}{'points/s':>12}{'x bulk':>8}{'seconds':>9}{'requests':>10}"
          f"{'B/pt wire':>11}{'CPU us/pt':>11}{'VM us/pt':>10}")
    for r in runs:
        print(f"{'gzip level ' + str(r['level']):<16}{r['rate']:>12,.0f}{r['rate'] / bulk:>8.2f}"
              f"{r['seconds']:>9.1f}{r['requests']:>10}{r['wire_bytes_per_point']:>11.2f}"
              f"{r['cpu_us_per_point']:>11.2f}{r['vm_cpu_us_per_point']:>10.2f}")
    for r in runs:
        print()
        print(f"gzip level {r['level']}, where the drain's {r['seconds']:.1f} s went (wall seconds "
              f"of each stage; stages on different threads overlap):")
        for stage, what in STAGES.items():
            if stage in r["wall"]:
                print(f"  {stage:<10}{r['wall'][stage]:>8.2f} s in {r['calls'][stage]:>6} calls  {what}")
        idle = r["seconds"] - r["wall"].get("deliver", 0.0)
        print(f"  {'no send':<10}{idle:>8.2f} s                 the sender thread had nothing to "
              f"send (waiting for a batch or a position write)")
        print("  gateway CPU by thread: " + ", ".join(
            f"{role} {seconds:.2f} s" for role, seconds in sorted(r["threads"].items(),
                                                                  key=lambda kv: -kv[1])))
    if lat:
        q = statistics.quantiles(lat, n=100)
        print()
        print(f"{'latency (durable -> ack)':<28}p50 {q[49]:.2f} s, p99 {q[98]:.2f} s, max {max(lat):.2f} s "
              f"({len(lat)} seconds of {args.latency_series} series; flush_interval {args.flush}, "
              f"goal p99 < flush_interval + 1 s)")


if __name__ == "__main__":
    main()
