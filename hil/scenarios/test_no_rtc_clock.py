"""Scenario 6: no real-time clock. The device boots with its clock in the past (a Pi's last
fake-hwclock save), takes data, is restarted and loses power before the clock is synchronised,
then the clock is stepped forward as NTP would. Every point the gateway timed meanwhile must be
stored once, with the time it was really taken (not in the past, not refused as too old), and
the points a device timed itself must keep their times.

The device is a LAN sensor publishing QoS 1 to the gateway's endpoint: messages without a time
of their own (timed by the gateway on arrival) and messages with one; the host reader adds the
gateway's own readings. A PUBACK means the message is on the card, held or stored. Each run tags
its messages with an id of its own and counts only those, and only the host readings stored
since it booted the device with its configuration, so a device that ran the scenario before (a bench Pi) can run it again.
"""

from __future__ import annotations

import time
import uuid

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hil.scenarios.test_power_cut_mqtt import config as lan_ingest_config
from hil.scenarios.waiting import wait_for

pytestmark = [pytest.mark.hil, pytest.mark.slow]

S = 10**9
#: The clock the device boots with: a fake-hwclock save from 2025-01-01T00:00:00Z.
BOOT_CLOCK_S = 1_735_689_600
MESSAGES_PER_PHASE = 40
#: The device's own clock is good: its timed messages carry an hour ago.
DEVICE_TIME_NS = (time.time_ns() // S - 3600) * S
#: A re-timed point may sit before its real arrival by the step's own latency (the rig reads its
#: clock, then the request reaches the device); far less than this.
STEP_SLACK_NS = 2 * S
#: Until the held points are stored once the clock is stepped (a status read over SSH on an
#: emulated CPU takes seconds).
RELEASE_TIMEOUT_S = 120


def config(broker_url: str, listen: str, password_file: str) -> str:
    """Scenario 4's LAN ingest, the host reader every second, and the clock rule on."""
    return lan_ingest_config(broker_url, listen, password_file) + """
[clock]
require_sync = true

[readers.host]
interval = "1s"
"""


def _hold(status: dict) -> dict:
    """The status API's figures of the points held until the clock is synchronised (none when
    the device does not hold)."""
    return status.get("clock_hold") or {}


class Device:
    """The LAN sensor: publishes QoS 1 and counts PUBACKs; resends what was not acknowledged."""

    def __init__(self, rig, run: str) -> None:
        self.run = run
        host, port, user, password = rig.mqtt_device_endpoint()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="hil-clock-device",
                                  clean_session=False)
        self.client.username_pw_set(user, password)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.acked: set[int] = set()
        self.client.on_publish = lambda c, u, mid, rc, props: self.acked.add(mid)
        self.client.connect(host, port)
        self.client.loop_start()
        self.sent = 0
        #: Host wall time (ns) of each untimed message's publish, by sequence number.
        self.published_at: dict[int, int] = {}

    def publish_phase(self, n: int) -> None:
        for _ in range(n):
            seq = self.sent
            self.published_at[seq] = time.time_ns()
            tags = f"device=d1,run={self.run}"
            self.client.publish("hil/clock", f"clk,{tags} seq={seq}i", qos=1)
            self.client.publish("hil/clock", f"clk_dev,{tags} seq={seq}i {DEVICE_TIME_NS + seq * S}",
                                qos=1)
            self.sent += 1
            time.sleep(0.01)
        wait_for(lambda: len(self.acked), lambda k: k >= 2 * self.sent,
                 f"PUBACKs for all {2 * self.sent} messages", timeout=120)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _host_reading_times(rig) -> set[int]:
    return {p.time_ns for p in rig.points("host_system")}


def points_before_the_clock_is_synchronised(rig, figures: dict) -> None:
    """The scenario on any rig with a clock, power, the status API and an MQTT publisher;
    ``figures`` gets what it measured; fails unless every point the gateway timed is stored
    once at its real time and the device's own times are kept."""
    run = uuid.uuid4().hex[:12]
    rig.set_boot_clock(BOOT_CLOCK_S)
    started_ns = time.time_ns()
    rig.boot(config(rig.subscriber_broker_url(), *rig.device_listener()))
    # What the device stored before it booted with this configuration (a device that ran before,
    # or its previous configuration's readings): from now on the gateway holds what it times.
    earlier_host = _host_reading_times(rig)
    device = Device(rig, run)
    try:
        device.publish_phase(MESSAGES_PER_PHASE)
        before = rig.status()
        rig.restart_gateway()                      # held points survive a graceful restart
        device.publish_phase(MESSAGES_PER_PHASE)
        rig.power_cut()                            # and a power cut
        rig.power_on()
        device.publish_phase(MESSAGES_PER_PHASE)
        held = rig.status()
        # Nothing the gateway timed is stored yet; what the device timed is, as it came.
        early = [p for p in rig.points()
                 if (p.measurement == "clk" and p.tags.get("run") == run)
                 or (p.measurement == "host_system" and p.time_ns not in earlier_host)]
        step_s = rig.step_clock()
        stepped_ns = time.time_ns()
        after = wait_for(rig.status, lambda s: _hold(s).get("held_points", 0) == 0,
                         "the held points stored after the clock was stepped", timeout=RELEASE_TIMEOUT_S)
    finally:
        device.close()

    def this_run(measurement: str) -> dict[int, int]:
        return {int(p.value): p.time_ns for p in rig.points(measurement)
                if p.field == "seq" and p.tags.get("run") == run}

    untimed, timed = this_run("clk"), this_run("clk_dev")
    host = sorted(_host_reading_times(rig) - earlier_host)
    ended_ns = time.time_ns()   # the host reader goes on reading until the export
    off = {seq: t - device.published_at[seq] for seq, t in untimed.items() if seq in device.published_at}
    figures.update({
        "clock step (s)": "not known on this rig" if step_s is None else f"{step_s:.1f}",
        "messages without a time / with one, acknowledged": f"{device.sent} / {device.sent}",
        "held before the restart / before the step": (f"{_hold(before).get('held_points')} / "
                                                      f"{_hold(held).get('held_points')}"),
        "stored after the step, untimed messages": len(untimed),
        "host readings stored": len(host),
        "arrival time minus publish time, min/max (ms)": (
            f"{min(off.values()) / 1e6:.1f} / {max(off.values()) / 1e6:.1f}" if off else "-"),
        "released / refused / damaged records": (f"{_hold(after).get('released_points')} / "
                                                 f"{_hold(after).get('refused_points')} / "
                                                 f"{_hold(after).get('damaged_records')}"),
    })

    # Every acknowledged message is stored once, at the time it arrived.
    assert sorted(untimed) == list(range(device.sent)), \
        f"untimed messages lost: {sorted(set(range(device.sent)) - set(untimed))[:10]}"
    wrong = {seq: t for seq, t in untimed.items()
             if not device.published_at[seq] - STEP_SLACK_NS <= t <= ended_ns}
    assert not wrong, (f"{len(wrong)} messages stored away from their arrival, e.g. "
                       f"{sorted(wrong.items())[:3]} (published from {started_ns})")
    # The device's own times are kept.
    assert timed == {seq: DEVICE_TIME_NS + seq * S for seq in range(device.sent)}
    # The gateway's own readings: none in the past, none in the future.
    assert host, "no host readings stored"
    early_host = [t for t in host if not started_ns - STEP_SLACK_NS <= t <= ended_ns]
    assert not early_host, f"host readings stored away from now: {early_host[:3]} (stepped at {stepped_ns})"
    assert not [p for p in early if p.measurement in ("clk", "host_system")], \
        "points the gateway timed were stored before the clock was synchronised"

    # What the status API said meanwhile.
    assert before["clock_synchronised"] is False and before["clock_text"] == "not synchronised"
    assert before["clock_holding"] and _hold(before)["held_points"] >= MESSAGES_PER_PHASE
    assert _hold(held)["held_points"] >= 3 * MESSAGES_PER_PHASE
    assert after["clock_synchronised"] is True and not after["clock_holding"]
    assert _hold(after)["damaged_records"] == 0 and _hold(after)["refused_points"] == 0


def test_points_taken_before_the_clock_is_synchronised_get_their_real_times(make_rig, figures):
    points_before_the_clock_is_synchronised(make_rig(), figures)
