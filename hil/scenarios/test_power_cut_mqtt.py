"""Scenario 4: power cuts during MQTT ingest from a LAN device, repeated: zero acknowledged
points lost, zero phantom points, and the store opens every time.

"Acknowledged" is what the device saw: the publisher stands on the LAN side, as a real sensor
does, publishes QoS 1 to the gateway's own endpoint and counts its PUBACKs; the gateway sends a
PUBACK only once the message's points are in the synced WAL. The device keeps what was not
acknowledged and sends it again after each reconnect, as paho does. Every message carries its
own sequence number as value and timestamp, so a stored point names the message it came from.
"""

from __future__ import annotations

import time

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hil.rigs import RigLacks
from hil.scenarios.waiting import wait_for

pytestmark = [pytest.mark.hil, pytest.mark.slow]

POWER_CUTS = 5
RATE_PER_S = 100
SECONDS_BETWEEN_CUTS = 3.0
#: Message timestamps: an hour ago plus the sequence number in ms (inside any retention).
BASE_NS = (time.time_ns() // 10**9 - 3600) * 10**9


def config(broker_url: str, listen: str, password_file: str) -> str:
    return f"""
[gateway]
hardware = "emulated"

[[readers.mqtt]]
server = "{broker_url}"
client_id = "gateway-hil"
reconnect_min = "100ms"
reconnect_max = "1s"

[readers.mqtt.listener]
listen = "{listen}"
password_file = "{password_file}"

[[readers.mqtt.subscriptions]]
topic = "hil/#"
format = "line"
"""


def stored_sequence_numbers(rig) -> list[int]:
    return [int(p.value) for p in rig.points("hil") if p.field == "seq"]


def power_cuts_during_lan_ingest(rig, figures: dict, power_cuts: int = POWER_CUTS,
                                 seconds_between_cuts: float = SECONDS_BETWEEN_CUTS) -> None:
    """The scenario on any rig with power and an MQTT publisher; ``figures`` gets what it
    measured; fails unless every acknowledged message is stored and nothing else is."""
    rig.boot(config(rig.subscriber_broker_url(), *rig.device_listener()))
    host, port, user, password = rig.mqtt_device_endpoint()

    device = paho.Client(CallbackAPIVersion.VERSION2, client_id="hil-device", clean_session=False)
    device.username_pw_set(user, password)
    device.reconnect_delay_set(0.1, 0.5)
    device.max_inflight_messages_set(100)
    acked_mids: set[int] = set()
    device.on_publish = lambda c, u, mid, rc, props: acked_mids.add(mid)
    device.connect(host, port)
    device.loop_start()

    try:
        rig.filesystem_state()
        checks_filesystem = True
    except RigLacks:  # the emulated rig's data directory is on this machine's own disk
        checks_filesystem = False
    seq_of_mid: dict[int, int] = {}
    boot_times: list[float] = []
    unclean: list[str] = []
    unacked_at_cuts = 0
    sent = 0
    started = time.monotonic()
    try:
        for cut in range(power_cuts):
            until = time.monotonic() + seconds_between_cuts
            while time.monotonic() < until:
                info = device.publish("hil/device", f"hil,device=d1 seq={sent}i {BASE_NS + sent * 10**6}",
                                      qos=1)
                seq_of_mid[info.mid] = sent
                sent += 1
                time.sleep(1 / RATE_PER_S)  # the device's own publishing rate
            unacked_at_cuts += sent - len(acked_mids)  # in flight or queued: the device resends them
            rig.power_cut()
            boot_times.append(rig.power_on())
            state = rig.filesystem_state() if checks_filesystem else "clean"
            if state != "clean":
                unclean.append(f"after cut {cut + 1}: {state}")
        # The device resends what was not acknowledged until everything is.
        wait_for(lambda: len(acked_mids), lambda n: n >= sent, f"PUBACKs for all {sent} messages",
                 timeout=120)
    finally:
        device.disconnect()
        device.loop_stop()

    acked = {seq_of_mid[mid] for mid in acked_mids}
    stored = stored_sequence_numbers(rig)
    try:   # what WAL replay found damaged over all the cuts (the storage status API)
        wal_damage = {bucket["name"]: bucket["wal_damage"] for bucket in rig.status("storage")["buckets"]}
    except RigLacks:
        wal_damage = None
    damaged = {f"{bucket}: {name}": n for bucket, counts in (wal_damage or {}).items()
               for name, n in counts.items() if n}
    lost = acked - set(stored)
    phantom = set(stored) - set(range(sent))
    figures.update({"messages sent": sent, "acknowledged": len(acked),
                    "unacknowledged at the cuts": unacked_at_cuts, "stored": len(set(stored)),
                    "acknowledged lost": len(lost), "phantom": len(phantom),
                    "power cuts survived": len(boot_times),
                    "boot after cut, min/mean/max (s)": "/".join(
                        f"{t:.1f}" for t in (min(boot_times), sum(boot_times) / len(boot_times),
                                             max(boot_times))),
                    "WAL damage found": ("not read on this rig" if wal_damage is None
                                         else ", ".join(f"{k} {v}" for k, v in damaged.items()) or "none"),
                    "file system after each cut": ("; ".join(unclean) or "clean" if checks_filesystem
                                                   else "not checked on this rig"),
                    "scenario time (s)": round(time.monotonic() - started, 1)})
    assert not lost, f"{len(lost)} acknowledged messages not stored, e.g. {sorted(lost)[:5]}"
    assert not phantom, f"points stored that no device sent: {sorted(phantom)[:5]}"
    assert not damaged, f"WAL replay found damage after the power cuts: {damaged}"
    assert not unclean, f"the file system was not clean: {unclean}"


def test_power_cuts_during_lan_ingest(make_rig, figures, request):
    power_cuts_during_lan_ingest(make_rig(), figures, request.config.getoption("--power-cuts"))
