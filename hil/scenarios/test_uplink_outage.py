"""Scenario 3: ten minutes of uplink outage during ingest, and zero loss upstream once it returns.

A LAN device publishes a reading of 20 sensors every second of the gateway's time (QoS 1 to the
gateway's own endpoint, each message timed by the device and counted by its PUBACK); the gateway
replicates them to the rig's upstream (a VictoriaMetrics behind the rig's uplink). The uplink is
cut for ten minutes of the gateway's time while the device goes on publishing, then restored.
The check is of data: every point the gateway acknowledged is in the upstream, once (resends
within the documented bound: the points of one delivery of heads), nothing else is, and the
replication status showed the backlog growing during the outage and drained after it.

Ten minutes in less: where the rig can advance the device's clock (the emulated rig), each tick
of the scenario lets five seconds of the gateway's time pass at once; the replication stream's
flush interval and backoff wait on that clock (gateway/clock.py), so its retries back off to
their 60 s cap as over ten real minutes, and the device's readings carry the same time. On a rig
without it the ticks are real seconds, and the scenario takes its real ten minutes and more.
"""

from __future__ import annotations

import json
import time

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hil.rigs import RigError, RigLacks
from hil.scenarios.test_power_cut_mqtt import config as lan_ingest_config
from hil.scenarios.waiting import wait_for

pytestmark = [pytest.mark.hil, pytest.mark.slow]

S = 10**9
SERIES = 20
#: Seconds of the gateway's time a tick lets pass (and seconds of readings published in it).
TICK_S = 5
BEFORE_S, OUTAGE_S = 60, 600
#: Longest the backlog may take to reach the upstream after the restore, in gateway time: a
#: retry still waiting at the backoff's 60 s cap, then the drain.
DRAIN_LIMIT_S = 300
FLUSH_INTERVAL_S = 2
#: Small heads, so that the outage's points are sealed into blocks: the status's backlog.
HEAD_POINTS = 16
#: A resend the documentation allows: the points of one delivery of heads, at most
#: ``head_points`` a series (a request taken as the link went down, and head points whose marks
#: a failed read-ahead consumed; docs/replication.md).
DUPLICATE_BOUND = SERIES * HEAD_POINTS
#: The readings' times start half an hour before the run: the played outage stays in the past.
T0_S = int(time.time()) - 1800
#: The backoff's cap and first delay (gateway/backoff.py): failures during the outage are
#: bounded by them when the stream's waits follow the played clock.
BACKOFF_CAP_S, BACKOFF_FIRST_S = 60.0, 0.5


def config(broker_url: str, listen: str, password_file: str, upstream_url: str) -> str:
    """Scenario 4's LAN ingest, and one stream of the device's readings to the rig's upstream."""
    return lan_ingest_config(broker_url, listen, password_file) + f"""
[store]
head_points = {HEAD_POINTS}
wal_sync = "20ms"     # PUBACKs come at the group commit: each tick waits for one

[[replication]]
name = "uplink"
kind = "influxdb_v2"
url = "{upstream_url}"
org = "hil"
bucket = "hil"
buckets = ["raw"]
measurements = ["uplink"]
flush_interval = "{FLUSH_INTERVAL_S}s"
timeout = "5s"
"""


def reading(second: int) -> tuple[str, dict[tuple, tuple[int, float]]]:
    """The device's message for one second of readings, and the samples the upstream must hold
    for it: {(metric, labels): (ms, value)} in VictoriaMetrics' mapping."""
    lines, samples = [], {}
    for s in range(SERIES):
        value = float(second * 100 + s)
        lines.append(f"uplink,sensor=s{s:02d} value={value} {(T0_S + second) * S}")
        samples[("uplink_value", (("sensor", f"s{s:02d}"),))] = ((T0_S + second) * 1000, value)
    return "\n".join(lines), samples


class Device:
    """The LAN sensor: QoS 1 publishes, counted by PUBACK; paho resends what was not acknowledged."""

    def __init__(self, rig) -> None:
        host, port, user, password = rig.mqtt_device_endpoint()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="hil-uplink-device",
                                  clean_session=False)
        self.client.username_pw_set(user, password)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.max_inflight_messages_set(100)
        self.acked: set[int] = set()
        self.second_of_mid: dict[int, int] = {}
        self.client.on_publish = lambda c, u, mid, rc, props: self.acked.add(mid)
        self.client.connect(host, port)
        self.client.loop_start()
        self.seconds = 0   # readings published so far, one message a second of gateway time

    def publish(self, seconds: int) -> None:
        for _ in range(seconds):
            payload, _ = reading(self.seconds)
            info = self.client.publish("hil/uplink", payload, qos=1)
            self.second_of_mid[info.mid] = self.seconds
            self.seconds += 1
        wait_for(lambda: len(self.acked), lambda n: n >= self.seconds,
                 f"PUBACKs for all {self.seconds} messages", timeout=60, every=0.02)

    def acknowledged_seconds(self) -> set[int]:
        return {self.second_of_mid[mid] for mid in self.acked}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class GatewayTime:
    """The gateway's time as the scenario plays it: a tick advances the device's clock where
    the rig can, and waits in real time where it cannot."""

    def __init__(self, rig) -> None:
        self.rig = rig
        self.played = rig.advances_clock
        self.seconds = 0.0

    def tick(self, seconds: float) -> None:
        if self.played:
            self.rig.advance_clock(seconds)
        else:
            time.sleep(seconds)
        self.seconds += seconds
        # The gateway's own threads (the WAL's commit, the sender) run in real time: a pause
        # lets each tick's work be done before the next tick's time passes.
        time.sleep(0.1)


def replication_status(rig) -> dict:
    """``gateway replication status --json`` on the device: the stream's figures."""
    rc, out, err = rig.gateway("replication", "status", "--json")
    if rc != 0:
        raise RigError(f"gateway replication status failed (exit {rc}): {err.strip()}")
    return json.loads(out)["uplink"]


def backlog_points(status: dict) -> int:
    return sum(b["backlog_points"] for b in status["buckets"].values())


def samples_of(seconds) -> dict[tuple, set[tuple[int, float]]]:
    """What the upstream must hold for these seconds of readings: {(metric, labels): samples}."""
    out: dict[tuple, set] = {}
    for second in seconds:
        for key, sample in reading(second)[1].items():
            out.setdefault(key, set()).add(sample)
    return out


def holds(rig, wanted: dict[tuple, set]) -> bool:
    """Whether the upstream holds every one of these samples (perhaps more)."""
    held = rig.upstream_points()
    return all(samples <= set(held.get(key, ())) for key, samples in wanted.items())


def test_ten_minutes_of_uplink_outage_lose_nothing_upstream(make_rig, figures):
    rig = make_rig()
    upstream_url = rig.upstream_url()
    clock = GatewayTime(rig)
    if clock.played:
        rig.set_boot_clock(T0_S)   # the rig's clock, which it advances
    rig.boot(config(rig.subscriber_broker_url(), *rig.device_listener(), upstream_url))
    try:
        # Synchronised from the start (the scenario is not about the clock): at the played
        # clock's start, or as it is (the device's own clock: the ticks are real seconds).
        rig.step_clock(T0_S if clock.played else None)
    except RigLacks:
        pass                       # a rig without the clock: the device's as it is
    device = Device(rig)
    started = time.monotonic()
    statuses: dict[str, dict] = {}
    try:
        def ingest(seconds: int, every=None) -> None:
            for t in range(0, seconds, TICK_S):
                device.publish(TICK_S)
                clock.tick(TICK_S)
                if every:
                    every(t + TICK_S)

        ingest(BEFORE_S)
        statuses["before the cut"] = replication_status(rig)
        rig.uplink_cut()
        cut_at_seconds = device.seconds
        outage_started = clock.seconds

        def sample_mid_outage(t):
            if t == OUTAGE_S // 2:
                statuses["half-way"] = replication_status(rig)

        ingest(OUTAGE_S, sample_mid_outage)
        statuses["end of the outage"] = replication_status(rig)
        outage_s = clock.seconds - outage_started
        rig.uplink_restore()
        restored_at_seconds = device.seconds
        restored_gateway_s, restored_real = clock.seconds, time.monotonic()

        # The device goes on publishing; the outage's points must reach the upstream.
        outage_points = samples_of(range(restored_at_seconds))
        drained = False
        while clock.seconds - restored_gateway_s < DRAIN_LIMIT_S:
            ingest(TICK_S)
            if holds(rig, outage_points):
                drained = True
                break
        drain_gateway_s = clock.seconds - restored_gateway_s
        drain_real_s = time.monotonic() - restored_real
        statuses["after the drain"] = replication_status(rig)

        # The last readings: time goes on (no new ones) until they are sent too, and the
        # status shows no backlog.
        everything = samples_of(device.acknowledged_seconds())
        for _ in range(DRAIN_LIMIT_S // TICK_S):
            if holds(rig, everything):
                final_status = replication_status(rig)
                if backlog_points(final_status) == 0:
                    break
            clock.tick(TICK_S)
        else:
            final_status = replication_status(rig)
    finally:
        device.close()

    held = rig.upstream_points()
    acknowledged = device.acknowledged_seconds()
    expected = samples_of(acknowledged)
    stored = {key: set(samples) for key, samples in held.items()}
    lost = sum(len(samples - stored.get(key, set())) for key, samples in expected.items())
    phantom = sum(len(samples - expected.get(key, set())) for key, samples in stored.items())
    duplicates = sum(len(samples) - len(set(samples)) for samples in held.values())
    errors_during_outage = (statuses["end of the outage"]["counters"].get("errors", 0)
                            - statuses["before the cut"]["counters"].get("errors", 0))
    backlog = {when: backlog_points(s) for when, s in statuses.items()}
    figures.update({
        "points written (acknowledged by the gateway)": SERIES * len(acknowledged),
        "points published": SERIES * device.seconds,
        "points delivered upstream (distinct)": sum(len(s) for s in stored.values()),
        "lost": lost, "phantom": phantom,
        "duplicates upstream (bound)": f"{duplicates} ({DUPLICATE_BOUND})",
        "outage (s of gateway time)": outage_s,
        "points written during the outage": SERIES * (restored_at_seconds - cut_at_seconds),
        "time to drain after the restore, gateway / real (s)": (
            f"{drain_gateway_s:.0f} / {drain_real_s:.1f}" if drained else f"not drained in {DRAIN_LIMIT_S}"),
        "backlog points: " + ", ".join(backlog): " / ".join(str(n) for n in backlog.values()),
        "upstream errors during the outage": errors_during_outage,
        "stream state at the end of the outage": statuses["end of the outage"]["state"],
        "clock": "played (advanced by the rig)" if clock.played else "real time",
        "scenario time (s)": round(time.monotonic() - started, 1),
    })

    missing = sorted((ms, dict(key[1])["sensor"]) for key, samples in expected.items()
                     for ms, _ in samples - stored.get(key, set()))
    assert lost == 0, (f"{lost} acknowledged points are not in the upstream, readings of "
                       f"{len({ms for ms, _ in missing})} seconds from "
                       f"{(missing[0][0] // 1000 - T0_S) if missing else '-'} s to "
                       f"{(missing[-1][0] // 1000 - T0_S) if missing else '-'} s of the run "
                       f"(the outage: {cut_at_seconds} s to {restored_at_seconds} s)")
    assert phantom == 0, f"{phantom} points in the upstream that the device never sent"
    assert duplicates <= DUPLICATE_BOUND, f"{duplicates} points delivered twice (bound {DUPLICATE_BOUND})"
    assert drained, f"the outage's points were not all upstream {DRAIN_LIMIT_S} s after the restore"
    assert len(acknowledged) == device.seconds, "the gateway did not acknowledge every message"
    # The status showed the outage: the backlog grew while the uplink was cut, and drained.
    # (backing off between retries; sending for the moment a retry takes)
    assert statuses["end of the outage"]["state"] in ("backing_off", "sending")
    assert statuses["end of the outage"]["last_error"], "no error shown during the outage"
    assert backlog["before the cut"] < backlog["half-way"] < backlog["end of the outage"], backlog
    assert backlog["after the drain"] < backlog["end of the outage"] and backlog_points(final_status) == 0, \
        (backlog, final_status["buckets"])
    # Ten minutes of retries, doubling from 0.5 s to the 60 s cap (each delay drawn from the
    # upper half of its bound, and ending at the next tick): at least one failure per cap plus
    # a tick, at most the doublings plus one per half cap.
    doublings = 8   # 0.5 s to 64 s
    least = int(outage_s // (BACKOFF_CAP_S + TICK_S))
    most = doublings + int(outage_s // (BACKOFF_CAP_S / 2)) + 1
    assert least <= errors_during_outage <= most, \
        f"{errors_during_outage} failed sends in {outage_s:.0f} s of outage, expected {least} to {most}"
