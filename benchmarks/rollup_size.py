"""Rollup bucket benchmark: what a default gateway's rollups take a day, and what a rollup
ring of the default size holds.

A default gateway on a Raspberry Pi 4 (no configuration, no sensors) stores the host reader's
31 numeric fields every 30 s (load, uptime, SoC temperature, throttling flags, memory, the root
filesystem, eth0 and wlan0 counters, the gateway's own figures; booleans are not rolled up).
The built-in task rollup-1m keeps the 1-minute mean, min, max and count of each: 124 rollup
series, a point a minute each. This benchmark writes those rollup points, day after day, into a
store with the default [store] section (the rollup bucket as configured by default: its size,
retention and sealing), as fast as it can, and prints what the ring holds at the end.

Each minute's aggregates are computed here from two modelled 30-second readings per field
(counters that grow, gauges that wander at the resolution the host reader stores them with),
as the task computes them: mean (float), min and max (the field's type), count (int).

In real time a rollup head is sealed when it is ``head_max_age`` old or holds ``head_points``
points, whichever comes first; an accelerated run never waits that long, so the benchmark
seals the bucket after each such span of data minutes (the configured one by default;
``--seal-minutes 15`` as the store's 15-minute ``head_max_age`` did before the rollup bucket
had its own).

    python benchmarks/rollup_size.py [--days 365] [--seal-minutes N]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time

from gateway.batch import Batch
from gateway.config.model import StoreSection
from gateway.store import Store

S = 10**9
MINUTE = 60 * S
DAY_MINUTES = 1440
T0 = 1_700_006_400 * 10**9   # 2023-11-15T00:00:00Z


class Field:
    """One numeric field of the host reader, read every 30 s: a counter growing by a random
    step, or a gauge wandering around a level; values at the resolution stored."""

    def __init__(self, measurement: str, tags: dict, name: str, kind: str, level: float,
                 step: float, resolution: float, integer: bool, rng: random.Random) -> None:
        self.measurement, self.tags, self.name = measurement, tags, name
        self.kind, self.level, self.step = kind, level, step
        self.resolution, self.integer, self.rng = resolution, integer, rng
        self.value = level

    def read(self):
        if self.kind == "counter":
            self.value += self.rng.uniform(0, self.step)
        elif self.kind == "gauge":
            self.value += self.rng.uniform(-self.step, self.step) + 0.02 * (self.level - self.value)
        q = round(self.value / self.resolution) * self.resolution
        return int(q) if self.integer else round(q, 6)


def pi_fields(rng: random.Random) -> list[Field]:
    """The host reader's numeric fields on a Raspberry Pi 4 with eth0 and wlan0."""
    f = lambda *a: Field(*a, rng=rng)
    out = [f("host_system", {}, "load1", "gauge", 0.6, 0.3, 0.01, False),
           f("host_system", {}, "load5", "gauge", 0.5, 0.05, 0.01, False),
           f("host_system", {}, "load15", "gauge", 0.4, 0.02, 0.01, False),
           f("host_system", {}, "uptime_s", "counter", 1e5, 60.0, 0.01, False),
           f("host_thermal", {"zone": "cpu-thermal"}, "temperature_c", "gauge", 48.0, 0.6, 0.487, False),
           f("host_power", {}, "flags", "const", 0, 0, 1, True),
           f("host_memory", {}, "total_bytes", "const", 3_978_932_224, 0, 1, True),
           f("host_memory", {}, "available_bytes", "gauge", 3.2e9, 2e6, 4096, True),
           f("host_memory", {}, "used_pct", "gauge", 19.5, 0.05, 1e-9, False),
           f("host_memory", {}, "swap_used_bytes", "const", 0, 0, 1, True),
           f("host_disk", {"path": "/"}, "total_bytes", "const", 30_500_000_000, 0, 1, True),
           f("host_disk", {"path": "/"}, "free_bytes", "gauge", 2.5e10, 1e5, 4096, True),
           f("host_disk", {"path": "/"}, "used_bytes", "gauge", 4e9, 1e5, 4096, True),
           f("host_disk", {"path": "/"}, "used_pct", "gauge", 13.8, 1e-4, 1e-9, False)]
    for iface, traffic in (("eth0", 40_000), ("wlan0", 2_000)):
        for d in ("rx", "tx"):
            out += [f("host_net", {"interface": iface}, f"{d}_bytes", "counter", 1e9, traffic, 1, True),
                    f("host_net", {"interface": iface}, f"{d}_packets", "counter", 1e6, traffic / 600, 1, True),
                    f("host_net", {"interface": iface}, f"{d}_errors", "const", 0, 0, 1, True)]
    out += [f("gateway", {}, "rss_bytes", "gauge", 6e7, 2e5, 4096, True),
            f("gateway", {}, "store_points_written", "counter", 1e6, 70, 1, True),
            f("gateway", {}, "store_bytes_written", "counter", 1e7, 700, 1, True),
            f("gateway", {}, "points_in_per_s", "gauge", 1.0, 0.05, 1e-9, False),
            f("gateway", {}, "store_bytes_per_s", "gauge", 12.0, 0.5, 1e-9, False)]
    return out


def rollup_minutes(fields: list[Field], first_minute: int, minutes: int) -> Batch:
    """The built-in task's points for these minutes: mean, min, max and count of each field's
    two readings of each minute, stamped at the start of the minute."""
    batch = Batch()
    for m in range(first_minute, first_minute + minutes):
        t = T0 + m * MINUTE
        for f in fields:
            a, b = f.read(), f.read()
            batch.add(f.measurement, f.tags, f.name + "_mean", (a + b) / 2, t)
            batch.add(f.measurement, f.tags, f.name + "_min", min(a, b), t)
            batch.add(f.measurement, f.tags, f.name + "_max", max(a, b), t)
            batch.add(f.measurement, f.tags, f.name + "_count", 2, t)
    return batch


async def measure(days: int, seal_minutes: int | None = None) -> dict:
    """Writes ``days`` of the default rollups into a default store; what its rollup ring holds."""
    config = StoreSection()
    bucket = config.buckets["rollup"]
    ring_size = int(bucket.max_size)
    if seal_minutes is None:   # what the configuration seals at, a point a minute
        max_age = bucket.head_max_age or config.head_max_age
        seal_minutes = min(config.head_points, int(float(max_age)) // 60)
    rng = random.Random(2023)
    fields = pi_fields(rng)
    chunk = seal_minutes
    # The ring's retention counts from the wall clock: the data's clock ends at the last minute.
    end = T0 + days * DAY_MINUTES * MINUTE
    with tempfile.TemporaryDirectory() as d:
        started = time.perf_counter()
        async with Store(d, config, clock=lambda: end) as store:
            for first in range(0, days * DAY_MINUTES, chunk):
                await store.write(rollup_minutes(fields, first, min(chunk, days * DAY_MINUTES - first)),
                                  "rollup")
                await store.flush("rollup", seal=True)
            st = store.stats("rollup")["rollup"]
        took = time.perf_counter() - started
    per_day = st["used_bytes"] / days
    return {"fields": len(fields), "series": 4 * len(fields), "days": days, "seconds": took,
            "seal_minutes": seal_minutes,
            "ring_size": ring_size, "bytes_per_point": st["bytes_per_point"],
            "bytes_per_day": per_day, "year_bytes": per_day * 365,
            "kept_days": (end - st["oldest"]) / (DAY_MINUTES * MINUTE) if st["oldest"] else 0.0,
            "points": st["points"], "evicted_points": st["evicted_points"]}


def table(m: dict) -> list[tuple[str, str]]:
    return [
        ("rollup series", f"{m['series']} ({m['fields']} numeric fields x mean/min/max/count)"),
        ("days written", f"{m['days']} ({m['series'] * DAY_MINUTES * m['days']:,} points, "
                         f"{m['seconds']:.0f} s)"),
        ("sealing", f"every {m['seal_minutes']} min of data"),
        ("ring size (default)", f"{m['ring_size'] / 2**20:.0f} MiB"),
        ("bytes per point", f"{m['bytes_per_point']:.2f}"),
        ("bytes per day", f"{m['bytes_per_day'] / 1e6:.3f} MB"),
        ("a year at that rate", f"{m['year_bytes'] / 2**20:.0f} MiB "
                                f"({100 * m['year_bytes'] / m['ring_size']:.0f} % of the ring)"),
        ("the ring holds (size / bytes a day)", f"{m['ring_size'] / m['bytes_per_day']:.0f} days"),
        ("kept at the end", f"{m['kept_days']:.1f} days, {m['points']:,} points, "
                            f"evicted {m['evicted_points']:,} points"),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--seal-minutes", type=int, default=None,
                    help="seal every N minutes of data (default: as the configuration does in "
                         "real time, a point a minute)")
    args = ap.parse_args()
    rows = table(asyncio.run(measure(args.days, args.seal_minutes)))
    width = max(len(a) for a, _ in rows)
    print(f"{'measurement':<{width}}  result")
    for a, b in rows:
        print(f"{a:<{width}}  {b}")


if __name__ == "__main__":
    main()
