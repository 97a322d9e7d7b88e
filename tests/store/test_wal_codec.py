"""The WAL's record coding round-trips every point bit for bit, whatever the values."""

from __future__ import annotations

import os
import struct

from hypothesis import HealthCheck, given, settings, strategies as st

from gateway.batch import Batch, UInt
from gateway.store.native import Heads, WriteAheadLog

I64 = st.integers(-(2**63), 2**63 - 1)
TS = st.one_of(I64, st.integers(1_600_000_000, 1_800_000_000).map(lambda s: s * 10**9),
               st.integers(0, 10**6).map(lambda ms: 1_700_000_000_000 * 10**6 + ms * 10**6))
FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.integers(-10**6, 10**6).map(lambda i: i / 100),
                   st.sampled_from([0.0, -0.0, 0.1, 1e-320, 2.0**53, 1e300]))
VALUES = {
    "f": FLOATS,
    "i": I64,
    "u": st.integers(0, 2**64 - 1).map(UInt),
    "b": st.booleans(),
    "s": st.text(max_size=40),
}
POINT = st.tuples(st.sampled_from(sorted(VALUES)), st.integers(0, 3), TS).flatmap(
    lambda t: st.tuples(st.just(t[0]), st.just(t[1]), st.just(t[2]), VALUES[t[0]]))


def raw(value):
    if isinstance(value, float):
        return struct.pack("<d", value)
    return value


def head_points(heads: Heads, ids) -> dict:
    out = {}
    for sid in ids:
        key, type_ = heads.series(sid)
        ts, values, strings = heads.head(sid)
        if strings is not None:
            vals = strings
        elif type_ == 1:
            vals = [struct.pack("<Q", v) for v in values]
        else:
            vals = list(values)
        out[key] = list(zip(ts, vals))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(POINT, min_size=1, max_size=60), min_size=1, max_size=4))
def test_logged_points_replay_exactly(tmp_path_factory, commits):
    d = str(tmp_path_factory.mktemp("wal"))
    path = os.path.join(d, "0000000000000001.wal")
    heads = Heads(1 << 20, 0)
    wal = WriteAheadLog()
    wal.create_segment(path, 1, 0, 0, 0)
    for points in commits:
        b = Batch()
        for kind, series, ts, value in points:
            b.add("m", {"s": str(series)}, kind, value, ts)
        heads.ingest(b.c_pointer, 0)
        heads.log(wal)
    ids = range(1, heads.counters()["max_series_id"] + 1)
    before = head_points(heads, ids)
    with open(path, "rb") as f:
        data = f.read()
    fresh = Heads(1 << 20, 0)
    assert fresh.replay(data, 0)
    counters = fresh.counters()
    assert counters["corrupt_records"] == 0 and counters["points_lost"] == 0
    assert counters["records_replayed"] == len(commits)
    assert head_points(fresh, ids) == before
    for h in (heads, fresh):
        h.close()
    wal.close()


def test_regular_decimal_readings_cost_well_under_a_byte(tmp_path):
    path = str(tmp_path / "0000000000000001.wal")
    heads = Heads(1 << 20, 0)
    wal = WriteAheadLog()
    wal.create_segment(path, 1, 0, 0, 0)
    b = Batch()
    t0 = 1_700_000_000 * 10**9
    for i in range(10_000):
        for s in range(10):
            b.add("env", {"sensor": str(s)}, "temp", 20 + ((i * 7 + s) % 5 - 2) / 100, t0 + i * 10**9)
    heads.ingest(b.c_pointer, 0)
    heads.log(wal)
    size = os.path.getsize(path)
    assert size / 100_000 < 0.4  # 3 bits a value, 0 bits a timestamp, plus headers
