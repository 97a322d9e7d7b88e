"""The compiled C core imports and its batch round-trips values of every type."""

import math

from gateway import _native
from gateway.batch import Batch, Point, UInt


def test_native_module_imports():
    assert _native.lib.GW_OK == 0
    assert _native.lib.GW_STRING == 5


def test_batch_round_trips_every_type():
    pts = [Point("weather station", {"t": 21.5, "n": -3, "u": UInt(2**64 - 1), "ok": True,
                                     "s": 'say "hi"', "nan": math.nan},
                 {"site": "a,b", "room": "x=y z"}, 1_700_000_000_000_000_000)]
    got = list(Batch.from_points(pts).points())
    assert len(got) == 6
    by_field = {f: (m, t, ts, v) for m, t, f, ts, v in got}
    assert by_field["t"] == ("weather station", {"room": "x=y z", "site": "a,b"}, 1_700_000_000_000_000_000, 21.5)
    assert by_field["n"][3] == -3
    assert by_field["u"][3] == 2**64 - 1 and isinstance(by_field["u"][3], UInt)
    assert by_field["ok"][3] is True
    assert by_field["s"][3] == 'say "hi"'
    assert math.isnan(by_field["nan"][3])
