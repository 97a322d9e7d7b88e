"""Scenario 7: what a realistic load costs the SD card a day, from the card's own counters.

Host metrics and two I2C parts every second (25 to 40 series at 1 Hz, by the host's network
interfaces: the local sensors of a typical gateway) run for a measured window; the bytes the
card's block device wrote in that window, scaled to a day, must stay under the budget
(``--write-budget-mib-per-day``). On the emulated rig the card is an ext4 file system of its own,
so its counters see only the gateway and ext4's own journal and metadata writes, as a real
card's do.
"""

from __future__ import annotations

import time

import pytest

from hil.scenarios.waiting import wait_for

pytestmark = [pytest.mark.hil, pytest.mark.slow]

WINDOW_S = 60.0

CONFIG = """
[gateway]
hardware = "emulated"

[store.buckets.raw]
max_size = "16MiB"

[store.buckets.rollup]
max_size = "4MiB"

[readers.host]
interval = "1s"

[[readers.i2c]]
bus = 1

[[readers.i2c.sensors]]
part = "bme280"
address = 0x76
interval = "1s"

[[readers.i2c.sensors]]
part = "sht31"
address = 0x44
interval = "1s"
"""


def test_card_writes_per_day(make_rig, figures, request):
    budget_mib = request.config.getoption("--write-budget-mib-per-day")
    rig = make_rig(card_mib=64)
    rig.boot(CONFIG)
    wait_for(lambda: len(rig.points("environment")), lambda n: n >= 10, "the sensors reporting")

    start_ns, written0 = time.time_ns(), rig.block_device_bytes_written()
    time.sleep(WINDOW_S)  # the measured window of load
    written = rig.block_device_bytes_written() - written0
    stop_ns = time.time_ns()

    points = sum(1 for p in rig.points() if start_ns <= p.time_ns < stop_ns)
    per_day = written * 86400 / WINDOW_S
    figures.update({"window (s)": WINDOW_S, "points in window": points,
                    "points/s": round(points / WINDOW_S, 1),
                    "card bytes written": written,
                    "bytes per point": round(written / max(points, 1), 1),
                    "MiB per day": round(per_day / 2**20, 1), "budget MiB per day": budget_mib})
    assert points > 20 * WINDOW_S, f"only {points} points in {WINDOW_S} s: the load did not run"
    assert per_day <= budget_mib * 2**20, \
        f"the card is written {per_day / 2**20:.1f} MiB a day, over the budget of {budget_mib} MiB"
