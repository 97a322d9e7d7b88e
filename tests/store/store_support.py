"""Helpers shared by the store tests (imported by module name: pytest puts this folder on sys.path)."""

from __future__ import annotations

from gateway.config.model import BucketConfig, StoreSection
from gateway.config.units import parse_duration, parse_size

#: 2023-11-14T22:13:20Z: realistic timestamps, well inside the default retention of "now".
T0 = 1_700_000_000 * 10**9


def small_config(**overrides) -> StoreSection:
    config = StoreSection(wal_sync="always", head_points=64)
    config.buckets = {"raw": BucketConfig(parse_size("1MiB"), None),
                      "rollup": BucketConfig(parse_size("256KiB"), None)}
    config.checkpoint_interval = parse_duration("1h")  # tests checkpoint explicitly
    for k, v in overrides.items():
        setattr(config, k, v)
    return config


def make_batch(rows):
    """A Batch from (measurement, tags, field, time_ns, value) rows."""
    from gateway.batch import Batch

    batch = Batch()
    for measurement, tags, field, ts, value in rows:
        batch.add(measurement, tags, field, value, ts)
    return batch


async def read_all(store, bucket="raw", **predicate) -> dict[str, list[tuple[int, object]]]:
    """{series key: [(time, value), ...]} of everything a scan returns."""
    out = {}
    for cols in await store.scan(bucket, **predicate):
        out[cols.key] = list(zip(cols.timestamps, cols.values))
    return out


def flip(path: str, offset: int) -> None:
    """Damages one byte of a file (flips some of its bits)."""
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x10]))
