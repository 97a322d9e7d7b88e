"""Scenario 5: the card fills up. The gateway keeps running, says so on the status page, loses
nothing it had stored, and stores again once space is back (the status page healthy again).

The scenario fills the data's file system with a file of the rig's until nothing is free to the
gateway (on the emulated rig an ext4 card of its own in a loop-mounted file; on a device its own
card, root keeping the file system's reserved blocks), keeps it full for a while, then deletes
the file. It stays full until the store's writes have failed and the built-in rollup task has
run (once a minute) on the full card: the store's failing writes (its periodic checkpoint, every
``checkpoint_interval``, is the first) make its component on the status page unhealthy with
their error until one succeeds again, and a task whose state cannot be saved goes on.
"""

from __future__ import annotations

import time

import pytest

from hil.scenarios.waiting import wait_for

pytestmark = [pytest.mark.hil, pytest.mark.slow]

CARD_MIB = 48
#: The built-in rollup task runs once a minute.
TASK_RUN_WITHIN_S = 90.0

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


def store_status(rig) -> dict:
    """The store's component on the status API's overview."""
    (store,) = [c for c in rig.status("overview")["components"] if c["name"] == "store"]
    return store


def task_runs(rig) -> set[str]:
    """The task runs the status API lists (its newest)."""
    return {r["id"] for r in rig.status("tasks")["recent_runs"]}


def test_card_full_then_freed(make_rig, figures):
    rig = make_rig(card_mib=CARD_MIB)
    rig.boot(CONFIG)
    wait_for(lambda: len(temperatures(rig)), lambda n: n >= 10, "10 readings before the card fills")

    assert store_status(rig)["healthy"]
    filled = rig.fill_disk(leave_bytes=0)
    full_at = time.monotonic()
    runs_before = task_runs(rig)
    stored_when_full = temperatures(rig)
    said = wait_for(lambda: store_status(rig), lambda c: not c["healthy"],
                    "the status page showing the store's writes failing on the full card")
    said_after_s = time.monotonic() - full_at
    assert "space" in (said["error"] or ""), f"the status page's store error: {said['error']!r}"
    ran = wait_for(lambda: task_runs(rig) - runs_before, bool, "a task run on the full card",
                   timeout=TASK_RUN_WITHIN_S)
    assert rig.gateway_running(), f"the gateway stopped on a full card:\n{rig.log_tail()}"
    rig.free_disk()
    freed_at_ns, freed_at = time.time_ns(), time.monotonic()

    after = wait_for(lambda: temperatures(rig), lambda t: sum(1 for x in t if x > freed_at_ns) >= 5,
                     "5 readings stored after space came back")
    wait_for(lambda: store_status(rig), lambda c: c["healthy"], "the status page's store healthy again")
    recovered_s = time.monotonic() - freed_at
    lost = sorted(set(stored_when_full) - set(after))
    assert not lost, f"{len(lost)} points stored before the card filled are gone"
    assert rig.gateway_running()
    figures.update({"filler (MiB)": round(filled / 2**20, 1),
                    "status page said it after (s)": round(said_after_s, 1),
                    "full for (s)": round(freed_at - full_at, 1), "healthy again after (s)": round(recovered_s, 1),
                    "task runs on the full card": len(ran), "points before": len(stored_when_full),
                    "points after": len(after), "stored points lost": len(lost)})
