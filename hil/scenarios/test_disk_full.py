"""Scenario 5: the card fills up. The gateway keeps running, loses nothing it had stored, and
stores again once space is back.

The data directory is on a card of its own (on the emulated rig an ext4 file system in a
loop-mounted file); the scenario fills it with a file of its own until nothing is free, keeps it
full for a while, then deletes the file.
"""

from __future__ import annotations

import time

import pytest

from hil.scenarios.waiting import wait_for

pytestmark = [pytest.mark.hil, pytest.mark.slow]

CARD_MIB = 48
FULL_FOR_S = 6.0

CONFIG = """
[gateway]
hardware = "emulated"

[store]
wal_segment_size = "64KiB"

[store.buckets.raw]
max_size = "8MiB"

[store.buckets.rollup]
max_size = "2MiB"

[[readers.i2c]]
bus = 1

[[readers.i2c.sensors]]
part = "bme280"
address = 0x76
name = "bme"
interval = "200ms"
"""


def temperatures(rig) -> list[int]:
    return sorted(p.time_ns for p in rig.points("environment") if p.field == "temperature_c")


def test_card_full_then_freed(make_rig, figures):
    rig = make_rig(card_mib=CARD_MIB)
    rig.boot(CONFIG)
    wait_for(lambda: len(temperatures(rig)), lambda n: n >= 10, "10 readings before the card fills")

    filled = rig.fill_disk(leave_bytes=0)
    stored_when_full = temperatures(rig)
    time.sleep(FULL_FOR_S)  # the time the card stays full: set by the scenario
    assert rig.gateway_running(), f"the gateway stopped on a full card:\n{rig.log_tail()}"
    rig.free_disk()
    freed_at_ns = time.time_ns()

    after = wait_for(lambda: temperatures(rig), lambda t: sum(1 for x in t if x > freed_at_ns) >= 5,
                     "5 readings stored after space came back")
    lost = sorted(set(stored_when_full) - set(after))
    assert not lost, f"{len(lost)} points stored before the card filled are gone"
    assert rig.gateway_running()
    figures.update({"card (MiB)": CARD_MIB, "filler (MiB)": round(filled / 2**20, 1),
                    "full for (s)": FULL_FOR_S, "points before": len(stored_when_full),
                    "points after": len(after), "stored points lost": len(lost)})
