"""Scenario 2: an I2C sensor unplugged, CRC errors injected on another, then the first replugged:
health goes bad and good again on the status API, no wrong value is stored, the unplugged time
is a visible gap, and readings resume.

The emulated parts measure a room whose temperature, humidity and pressure stay within known
bounds (gateway/hardware/emulated/rig.py), so a reading outside them is a wrong value that got
through: a corrupted word whose CRC was not checked, or a part read before its calibration was
loaded again after the power-on reset that a replug is.
"""

from __future__ import annotations

import time

import pytest

from hil.scenarios.waiting import wait_for

pytestmark = [pytest.mark.hil, pytest.mark.slow]

BUS, BME280, SHT31 = 1, 0x76, 0x44
INTERVAL_S = 0.5
UNPLUGGED_S = 4.0
#: The emulated room: 21 +- 2.5 C, 45 +- 6 %RH, 101325 +- 150 Pa, plus a little noise.
PLAUSIBLE = {"temperature_c": (17.0, 25.0), "humidity_pct": (35.0, 55.0),
             "pressure_pa": (100900.0, 101750.0)}

CONFIG = f"""
[gateway]
hardware = "emulated"

[[readers.i2c]]
bus = {BUS}
retry_initial = "200ms"
retry_max = "1s"

[[readers.i2c.sensors]]
part = "bme280"
address = {BME280:#04x}
name = "bme"
interval = "{INTERVAL_S * 1000:g}ms"

[[readers.i2c.sensors]]
part = "sht31"
address = {SHT31:#04x}
name = "sht"
interval = "{INTERVAL_S * 1000:g}ms"
"""


def readings(rig, sensor: str, field: str = "temperature_c") -> list[tuple[int, float]]:
    return sorted((p.time_ns, p.value) for p in rig.points("environment")
                  if p.tags.get("sensor") == sensor and p.field == field)


def bus_healthy(rig) -> bool:
    """The I2C reader's health as the status API shows it (overview's components)."""
    (reader,) = [c for c in rig.status("overview")["components"] if c["name"] == f"reader:i2c:{BUS}"]
    return reader["healthy"]


def test_unplug_crc_replug(make_rig, figures):
    rig = make_rig()
    rig.boot(CONFIG)
    wait_for(lambda: (len(readings(rig, "bme")), len(readings(rig, "sht"))),
             lambda n: min(n) >= 5, "5 readings of each sensor")
    assert bus_healthy(rig)

    unplugged_at = time.monotonic()
    rig.i2c_fault(BUS, BME280, "vanish")
    before_unplug = len(readings(rig, "bme"))
    # Health goes bad for the unplugged part alone (the CRC errors come after this).
    wait_for(lambda: bus_healthy(rig), lambda ok: not ok, "the status API showing the bus unhealthy")
    rig.i2c_fault(BUS, SHT31, "corrupt_crc", count=5)
    time.sleep(max(0.0, UNPLUGGED_S - (time.monotonic() - unplugged_at)))  # the outage itself
    unplugged_s = time.monotonic() - unplugged_at   # longer than asked where the rig is slow
    rig.i2c_fault(BUS, BME280, "reappear")
    after = wait_for(lambda: readings(rig, "bme"), lambda r: len(r) >= before_unplug + 5,
                     "5 readings of the replugged BME280")
    sht = wait_for(lambda: readings(rig, "sht"), lambda r: len(r) >= 12, "12 SHT31 readings")
    wait_for(lambda: bus_healthy(rig), lambda ok: ok, "the status API showing the bus healthy again")

    gaps = [(b[0] - a[0]) / 1e9 for a, b in zip(after, after[1:])]
    longest = max(gaps)
    # The gap covers the outage less one poll interval at each end (and the retry back-off).
    assert longest >= UNPLUGGED_S - 2 * INTERVAL_S, \
        f"no gap for the {UNPLUGGED_S} s the BME280 was unplugged (longest {longest:.2f} s)"
    wrong = []
    for sensor in ("bme", "sht"):
        for field, (lo, hi) in PLAUSIBLE.items():
            if sensor == "sht" and field == "pressure_pa":
                continue
            wrong += [(sensor, field, t, v) for t, v in readings(rig, sensor, field)
                      if not lo <= v <= hi]
    assert not wrong, f"wrong values stored: {wrong[:5]}"
    figures.update({"bme280 readings": len(after), "sht31 readings": len(sht),
                    "gap (s)": round(longest, 2), "unplugged (s)": round(unplugged_s, 1),
                    "crc errors injected": 5, "wrong values stored": len(wrong)})
