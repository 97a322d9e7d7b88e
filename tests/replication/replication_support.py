"""Helpers of the replication tests: stream configs, the store's content, and the end-to-end
check that an upstream holds exactly the store's points (imported by module name)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import struct
import time

from gateway import config as cfg
from gateway.config.model import BucketConfig, StoreSection
from gateway.config.units import parse_duration, parse_size

#: Test timestamps start an hour ago: inside the store's retention and the upstreams'.
RECENT_NS = (time.time_ns() // 1_000_000_000 - 3600) * 1_000_000_000
#: How long a test waits for an upstream to catch up before it checks (and fails).
CATCH_UP_S = 90


def store_config(**overrides) -> StoreSection:
    config = StoreSection(wal_sync="always", head_points=64)
    config.buckets = {"raw": BucketConfig(parse_size("4MiB"), None),
                      "rollup": BucketConfig(parse_size("1MiB"), None)}
    config.checkpoint_interval = parse_duration("1s")
    for k, v in overrides.items():
        setattr(config, k, v)
    return config


def stream_config(kind: str, url: str, **keys):
    """A loaded [[replication]] table (through the real config loader)."""
    keys = {"name": "up", "kind": kind, "url": url, "flush_interval": "1s", **keys}
    lines = ["[[replication]]"]
    for k, v in keys.items():
        if isinstance(v, str):
            lines.append(f"{k} = {v!r}".replace("'", '"'))
        elif isinstance(v, list):
            lines.append(f"{k} = [" + ", ".join(f'"{x}"' for x in v) + "]")
        else:
            lines.append(f"{k} = {v}")
    return cfg.load_text("\n".join(lines) + "\n").replication[0]


async def local_content(store, buckets=("raw", "rollup")) -> dict[str, list[tuple[int, object]]]:
    """{series key: [(ns, value)]} of every bucket (series keys do not repeat across the
    buckets of these tests)."""
    out = {}
    for bucket in buckets:
        for cols in await store.scan(bucket):
            values = cols.values
            if cols.series.type == 4:
                values = [bool(v) for v in values]
            out[cols.key] = list(zip(cols.timestamps, values))
    return out


def vm_name(key: str) -> tuple:
    """The VictoriaMetrics series of a store series (its InfluxDB line protocol mapping):
    metric ``<measurement>_<field>``, the tags as labels."""
    from gateway.lineprotocol import split_series_key

    measurement, tags, field = split_series_key(key)
    return f"{measurement}_{field}", tuple(sorted(tags.items()))


def vm_expected(local: dict) -> dict[tuple, list[tuple[int, float]]]:
    """What VictoriaMetrics holds of the store's points sent as line protocol: float64 values
    (booleans 1 and 0), millisecond times; a string becomes the number it spells, else 0;
    non-finite values are not sent."""
    out = {}
    for key, points in local.items():
        pts = []
        for ts, v in points:
            if isinstance(v, str):
                try:
                    v = float(v)
                except ValueError:
                    v = 0.0
            if isinstance(v, float) and not math.isfinite(v):
                continue
            pts.append((ts // 1_000_000, float(v)))
        if pts:
            out[vm_name(key)] = pts
    return out


def strip_labels(export: dict, *labels: str) -> dict:
    return {(name, tuple((k, v) for k, v in tags if k not in labels)): pts
            for (name, tags), pts in export.items()}


def compare_with_duplicates(expected: dict, got: dict, digits: int | None = None) -> tuple[list[str], int]:
    """Problems (missing or unexpected series and points, different values; values compared
    bit for bit, or to ``digits`` significant decimal digits) and the number of duplicate
    samples (a timestamp stored more than once with the same value)."""
    def _same(a, b):
        return _equal(a, b, digits)

    problems, duplicates = [], 0
    for key in sorted(set(expected) | set(got), key=str):
        want, have = expected.get(key), got.get(key)
        if want is None:
            problems.append(f"{key}: in the upstream only ({len(have)} points)")
            continue
        if have is None:
            problems.append(f"{key}: missing upstream ({len(want)} points)")
            continue
        dedup = []
        for p in have:
            if dedup and dedup[-1][0] == p[0] and _same(dedup[-1][1], p[1]):
                duplicates += 1
                continue
            dedup.append(p)
        if len(dedup) != len(want) or any(a[0] != b[0] or not _same(a[1], b[1])
                                          for a, b in zip(dedup, want)):
            diff = [(a, b) for a, b in zip(want, dedup) if a[0] != b[0] or not _same(a[1], b[1])]
            problems.append(f"{key}: {len(want)} points here, {len(dedup)} upstream; first "
                            f"differences {diff[:3]}")
    return problems, duplicates


def _equal(a, b, digits: int | None) -> bool:
    if digits is not None and isinstance(a, float) and isinstance(b, float):
        return a == b or float(f"{a:.{digits}g}") == float(f"{b:.{digits}g}")
    if isinstance(a, float) and isinstance(b, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    return a == b and type(a) is type(b)


#: VictoriaMetrics keeps a value as a decimal of 12 significant digits (its data model).
VM_DIGITS = 12


async def wait_until_equal(expected_fn, got_fn, timeout: float = CATCH_UP_S, digits=None):
    """Polls until the upstream's content equals the expected content (or the time is up);
    returns the last (problems, duplicates) for the caller to assert on."""
    deadline = time.monotonic() + timeout
    while True:
        expected = await expected_fn()
        got = await asyncio.get_running_loop().run_in_executor(None, got_fn)
        problems, duplicates = compare_with_duplicates(expected, got, digits)
        if not problems or time.monotonic() > deadline:
            return problems, duplicates
        await asyncio.sleep(0.5)


@contextlib.asynccontextmanager
async def running_stream(data_dir: str, stream, config=None):
    """A store in ``data_dir`` and one started stream on it: yields (store, stream)."""
    from gateway.replication.stream import ReplicationStream
    from gateway.store import Store

    store = await Store(data_dir, config or store_config()).open()
    s = ReplicationStream(stream, store)
    await s.start()
    try:
        yield store, s
    finally:
        await s.stop()
        await store.close()


@contextlib.contextmanager
def serving(server):
    """A test's own upstream (non-default settings), stopped by PID on the way out."""
    server.start()
    try:
        yield server
    finally:
        server.stop()


#: Nanoseconds of a second, the step of rows().
SECOND = 1_000_000_000


def rows(series: int, start: int, count: int, step: int = SECOND):
    for s in range(series):
        for i in range(count):
            yield ("env", {"room": f"r{s}"}, "temp", start + i * step, 20.0 + s + i / 100)


async def write_rows(store, rows_, bucket="raw", per_batch=50):
    from gateway.batch import Batch

    batch = Batch()
    for measurement, tags, field, ts, value in rows_:
        batch.add(measurement, tags, field, value, ts)
        if len(batch) >= per_batch:
            await store.write(batch, bucket)
            batch = Batch()
    if len(batch):
        await store.write(batch, bucket)


def vm_content(vm):
    return strip_labels(vm.export(), "db")


class PlayedClock:
    """The clock a stream times its cycles and retry waits with, moved by the test: a long
    outage plays in seconds. :meth:`advance` moves it and returns once the stream has done
    what fell due and waits again (its one sleeper parked)."""

    def __init__(self, sleepers: int = 1) -> None:
        self.now = 0.0
        self.slept: list[float] = []       # every wait asked for, in order
        self._sleepers = sleepers
        self._parked: list[float] = []     # wake-up times of the waits under way
        self._changed = asyncio.Condition()

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        until = self.now + seconds
        self.slept.append(seconds)
        async with self._changed:
            self._parked.append(until)
            self._changed.notify_all()
            await self._changed.wait_for(lambda: self.now >= until)
            self._parked.remove(until)

    async def advance(self, seconds: float, settle_s: float = CATCH_UP_S) -> None:
        async with self._changed:
            self.now += seconds
            self._changed.notify_all()
            await asyncio.wait_for(self._changed.wait_for(
                lambda: len(self._parked) == self._sleepers and min(self._parked) > self.now),
                settle_s)
