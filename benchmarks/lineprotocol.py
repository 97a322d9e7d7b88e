"""Line protocol parse and serialize throughput.

Generates a file of realistic lines (sensor readings from 100 devices: float-only weather
lines, host metrics with integers and unsigned values, events with strings and booleans), then
parses it whole and in 64 KiB requests (the size of a typical HTTP write body), and serializes
float series back to text. Prints a table of medians over several runs, in points per second.

    python benchmarks/lineprotocol.py [--points N] [--runs R]
"""

from __future__ import annotations

import argparse
import array
import os
import random
import statistics
import tempfile
import time

from gateway.batch import Batch, FLOAT
from gateway.lineprotocol import parse, serialize_series

BASE_NS = 1_700_000_000_000_000_000
STEP_NS = 10_000_000_000


def realistic_lines(n_points: int, seed: int = 1) -> bytes:
    """About n_points points as line protocol, timestamps advancing every 10 s per device."""
    rng = random.Random(seed)
    out: list[str] = []
    points = 0
    tick = 0
    while points < n_points:
        ts = BASE_NS + tick * STEP_NS
        for dev in range(100):
            kind = dev % 10
            if kind < 7:  # 70 weather stations: three floats
                out.append(f"weather,site=s{dev:02d},sensor=bme280 "
                           f"temperature={rng.uniform(-10, 35):.2f},humidity={rng.uniform(10, 99):.1f},"
                           f"pressure={rng.uniform(980, 1040):.2f} {ts}")
                points += 3
            elif kind < 9:  # 20 hosts: floats, integers, unsigned, four tags
                out.append(f"system,host=pi-{dev:02d},region=eu-west,rack=r{dev % 4},os=debian12 "
                           f"cpu_user={rng.uniform(0, 100):.3f},load1={rng.uniform(0, 4):.2f},"
                           f"procs={rng.randint(80, 400)}i,uptime={tick * 10 + dev}u,"
                           f"mem_free={rng.randint(10**8, 10**9)}i {ts}")
                points += 5
            else:  # 10 door sensors: a string, a boolean, an integer
                state = rng.choice(["open", "closed", "ajar, check \\\"latch\\\""])
                out.append(f"events,device=door\\ {dev},kind=contact "
                           f"state=\"{state}\",ok={rng.choice(['true', 'f'])},battery={rng.randint(0, 100)}i {ts}")
                points += 3
        tick += 1
    return ("\n".join(out) + "\n").encode()


def chunks(data: bytes, size: int) -> list[bytes]:
    """Splits at line ends into pieces of about size bytes (as separate HTTP writes would)."""
    out, start = [], 0
    while start < len(data):
        end = data.find(b"\n", min(start + size, len(data) - 1))
        end = len(data) if end < 0 else end + 1
        out.append(data[start:end])
        start = end
    return out


def timed(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=3_000_000)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "realistic.lp")
        with open(path, "wb") as f:
            f.write(realistic_lines(args.points))
        with open(path, "rb") as f:
            data = f.read()
    probe = parse(data, default_time_ns=0)
    assert probe.bad_lines == 0, probe.errors[:3]
    n_points, n_lines = probe.points, probe.lines
    mib = len(data) / 2**20

    batch = Batch()

    def parse_whole():
        batch.clear()
        parse(data, batch=batch)

    pieces = chunks(data, 64 * 1024)

    def parse_requests():
        for piece in pieces:
            parse(piece)  # a fresh batch per request, as the HTTP write API does

    # One float series of 1 M points for the serializer.
    rng = random.Random(2)
    n_ser = 1_000_000
    stamps = array.array("q", (BASE_NS + k * STEP_NS for k in range(n_ser)))
    values = array.array("d", (round(rng.uniform(-10, 35), 2) for _ in range(n_ser)))
    raw_values = array.array("d", (rng.uniform(-10, 35) for _ in range(n_ser)))
    key = "weather,sensor=bme280,site=s01 temperature"

    rows = []
    t = timed(parse_whole, args.runs)
    rows.append(("parse, one buffer", n_points / t, n_lines / t, mib / t))
    t = timed(parse_requests, args.runs)
    rows.append((f"parse, {len(pieces)} x 64 KiB writes", n_points / t, n_lines / t, mib / t))
    t = timed(lambda: serialize_series(key, FLOAT, stamps, values), max(3, args.runs // 2))
    rows.append(("serialize floats, 2 decimals", n_ser / t, n_ser / t, None))
    t = timed(lambda: serialize_series(key, FLOAT, stamps, raw_values), max(3, args.runs // 2))
    rows.append(("serialize floats, 17 digits", n_ser / t, n_ser / t, None))

    print(f"line protocol: {n_points:,} points in {n_lines:,} lines, {mib:.1f} MiB; "
          f"median of {args.runs} runs, one core")
    print(f"{'case':<34} {'points/s':>14} {'lines/s':>14} {'MiB/s':>8}")
    for name, pps, lps, mbs in rows:
        mb = f"{mbs:8.1f}" if mbs is not None else f"{'':>8}"
        print(f"{name:<34} {pps:>14,.0f} {lps:>14,.0f} {mb}")


if __name__ == "__main__":
    main()
