"""Scenario 7: what a realistic load costs the SD card a day, from the card's own counters.

The load: host metrics and two I2C parts every second (25 to 40 series at 1 Hz, by the host's
network interfaces: the local sensors of a typical gateway) and 20 LAN devices publishing three
fields every 10 s (QoS 1, to the gateway's own endpoint: 60 series). It runs for a measured
window; the bytes the card's block device wrote in that window, scaled to a day, must stay under
the budget (``--write-budget-mib-per-day``).

The day is a measured window scaled, not a day played faster: a device's clock cannot be
advanced on every rig (the qemu rig and a Pi run a real kernel's clocks), and the writes of a
steady load (the WAL's group commits, checkpoints every ``checkpoint_interval``, the file
system's journal) repeat at periods of seconds, which a window of a minute or more covers. What
a window does not see is the hourly and daily work (retention, the rollup's later levels,
fake-hwclock's hourly save): a lower bound of those, in proportion to the window, is in it.

On the emulated rig the card is an ext4 file system of its own (mounted as the image mounts
its root), so its counters see only the gateway and ext4's own journal and metadata writes. On
a device (qemu, ssh) they are the whole card's, as it wears: the system's own writes (journald,
timesyncd's clock file every 60 s) are in the figure too, and the rig names the processes that
wrote and counts the ext4 journal's commits. There the window is measured on the device, by one
command that syncs, reads the counters, waits and reads them again while the load runs from
here: the rig's SSH login (sshd's and sudo's log lines in journald's persistent journal) is
on the card before the window opens, as a device in the field has no such logins. Measured
between two SSH calls, journald was the largest writer of a 60 s window on the qemu rig (56 %);
measured on the device, it wrote nothing in the window.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, wait

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hil.rigs.base import CardWindow
from hil.scenarios.test_power_cut_mqtt import config as lan_ingest_config
from hil.scenarios.waiting import wait_for

pytestmark = [pytest.mark.hil, pytest.mark.slow]

WINDOW_S = 60.0
LAN_DEVICES = 20
LAN_PERIOD_S = 10.0
#: The two I2C parts' fields (BME280: 3, SHT31: 2), each read once a second.
I2C_FIELDS = 5

LOCAL_SENSORS = """
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


def publish_round(device: paho.Client, tick: int) -> list[paho.MQTTMessageInfo]:
    """One message from each LAN device (timed by the gateway on arrival)."""
    sent = []
    for n in range(LAN_DEVICES):
        line = (f"room,device=lan{n:02d} temperature_c={20 + (n + tick) % 7 * 0.25},"
                f"humidity_pct={40 + (n * 3 + tick) % 11 * 0.5},battery_v={3.0 + n % 5 * 0.05}")
        sent.append(device.publish(f"hil/lan{n:02d}", line, qos=1))
    return sent


def store_bytes_written(rig) -> int:
    """What the store wrote to its own files so far, by its own count (the storage status API)."""
    return sum(b["bytes_written"] for b in rig.status("storage")["buckets"])


def writers_in_window(card: CardWindow) -> str:
    """The processes that wrote in the window, largest first, and the journal's commits."""
    top = sorted(card.writers.items(), key=lambda item: -item[1])[:8]
    parts = [f"{name} {n}" for name, n in top]
    if card.journal_commits is not None:
        parts.append(f"{card.journal_commits} ext4 journal commits")
    return "; ".join(parts) or "-"


def test_card_writes_per_day(make_rig, figures, request):
    budget_mib = request.config.getoption("--write-budget-mib-per-day")
    rig = make_rig(card_mib=64)
    rig.boot(lan_ingest_config(rig.subscriber_broker_url(), *rig.device_listener()) + LOCAL_SENSORS)
    wait_for(lambda: len(rig.points("environment")), lambda n: n >= 10, "the sensors reporting")
    host, port, user, password = rig.mqtt_device_endpoint()
    device = paho.Client(CallbackAPIVersion.VERSION2, client_id="hil-lan-devices")
    device.username_pw_set(user, password)
    device.connect(host, port)
    device.loop_start()
    sent: list[paho.MQTTMessageInfo] = []
    try:
        store0, store_started = store_bytes_written(rig), time.monotonic()
        start_ns = time.time_ns()
        # The card is measured on the device while the load runs here: the rig's own login
        # for the measurement is outside the window (a device in the field has none).
        with ThreadPoolExecutor(1) as pool:
            measuring = pool.submit(rig.card_writes_during, WINDOW_S)
            started, tick = time.monotonic(), 0
            while not measuring.done():
                sent += publish_round(device, tick)
                tick += 1
                # the devices' own period: the window is the load's, not a wait for a result
                until_next = started + tick * LAN_PERIOD_S - time.monotonic()
                wait([measuring], timeout=max(0.0, until_next))
            card = measuring.result()
        load_s = time.monotonic() - started
        store_written = store_bytes_written(rig) - store0
        store_s = time.monotonic() - store_started
        wait_for(lambda: sum(m.is_published() for m in sent), lambda n: n == len(sent),
                 f"PUBACKs for the {len(sent)} LAN messages")
        stop_ns = time.time_ns()
    finally:
        device.disconnect()
        device.loop_stop()

    stored = [p for p in rig.points() if start_ns <= p.time_ns < stop_ns]
    # Every LAN point, whatever its time: the device times them on arrival by its own clock,
    # which may differ from this machine's by more than the first round's lead on the window.
    lan_points = len(rig.points("room"))
    i2c_points = sum(1 for p in stored if p.measurement == "environment")
    series = {(p.measurement, tuple(sorted(p.tags.items())), p.field) for p in stored}
    written, window_s = card.bytes_written, card.seconds
    per_day = written * 86400 / window_s
    figures.update({"window (s)": round(window_s, 1), "scaled to a day by": round(86400 / window_s),
                    "series": len(series), "points/s": round(len(stored) / load_s, 1),
                    "LAN messages": len(sent), "LAN points": lan_points,
                    "I2C points": i2c_points, "card bytes written": written,
                    "store's own bytes written": store_written,
                    "store MiB per day": round(store_written * 86400 / store_s / 2**20, 1),
                    "bytes per point": round(written / max(len(stored) * window_s / load_s, 1), 1),
                    "MiB per day": round(per_day / 2**20, 1), "budget MiB per day": budget_mib,
                    "writers in window (bytes)": writers_in_window(card)})
    assert lan_points == 3 * len(sent), f"{lan_points} LAN points stored of {3 * len(sent)} acknowledged"
    # The I2C parts read through the window (a few readings' slack at its ends).
    assert i2c_points >= I2C_FIELDS * (load_s - 5), \
        f"only {i2c_points} I2C points in {load_s:.0f} s: the load did not run"
    assert per_day <= budget_mib * 2**20, \
        f"the card is written {per_day / 2**20:.1f} MiB a day, over the budget of {budget_mib} MiB"
