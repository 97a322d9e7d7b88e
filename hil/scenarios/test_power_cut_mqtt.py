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

from hil.scenarios.waiting import wait_for

pytestmark = [pytest.mark.hil, pytest.mark.slow]

POWER_CUTS = 5
RATE_PER_S = 100
SECONDS_BETWEEN_CUTS = 3.0
#: Message timestamps: an hour ago plus the sequence number in ms (inside any retention).
BASE_NS = (time.time_ns() // 10**9 - 3600) * 10**9


def config(broker_url: str, port: int, password_file) -> str:
    return f"""
[gateway]
hardware = "emulated"

[[readers.mqtt]]
server = "{broker_url}"
client_id = "gateway-hil"
reconnect_min = "100ms"
reconnect_max = "1s"

[readers.mqtt.listener]
listen = "127.0.0.1:{port}"
password_file = "{password_file}"

[[readers.mqtt.subscriptions]]
topic = "hil/#"
format = "line"
"""


def stored_sequence_numbers(rig) -> list[int]:
    return [int(p.value) for p in rig.points("hil") if p.field == "seq"]


def test_power_cuts_during_lan_ingest(make_rig, figures):
    rig = make_rig()
    port, passwd = rig.device_listener()
    rig.boot(config(rig.subscriber_broker_url(), port, passwd))
    host, port, user, password = rig.mqtt_device_endpoint()

    device = paho.Client(CallbackAPIVersion.VERSION2, client_id="hil-device", clean_session=False)
    device.username_pw_set(user, password)
    device.reconnect_delay_set(0.1, 0.5)
    device.max_inflight_messages_set(100)
    acked_mids: set[int] = set()
    device.on_publish = lambda c, u, mid, rc, props: acked_mids.add(mid)
    device.connect(host, port)
    device.loop_start()

    seq_of_mid: dict[int, int] = {}
    boot_times = []
    sent = 0
    try:
        for _ in range(POWER_CUTS):
            until = time.monotonic() + SECONDS_BETWEEN_CUTS
            while time.monotonic() < until:
                info = device.publish("hil/device", f"hil,device=d1 seq={sent}i {BASE_NS + sent * 10**6}",
                                      qos=1)
                seq_of_mid[info.mid] = sent
                sent += 1
                time.sleep(1 / RATE_PER_S)  # the device's own publishing rate
            rig.power_cut()
            boot_times.append(rig.power_on())
        # The device resends what was not acknowledged until everything is.
        wait_for(lambda: len(acked_mids), lambda n: n >= sent, f"PUBACKs for all {sent} messages",
                 timeout=120)
    finally:
        device.disconnect()
        device.loop_stop()

    acked = {seq_of_mid[mid] for mid in acked_mids}
    stored = stored_sequence_numbers(rig)
    lost = acked - set(stored)
    phantom = set(stored) - set(range(sent))
    figures.update({"messages sent": sent, "acknowledged": len(acked), "stored": len(set(stored)),
                    "acknowledged lost": len(lost), "phantom": len(phantom),
                    "power cuts survived": len(boot_times),
                    "boot after cut, max (s)": round(max(boot_times), 2)})
    assert not lost, f"{len(lost)} acknowledged messages not stored, e.g. {sorted(lost)[:5]}"
    assert not phantom, f"points stored that no device sent: {sorted(phantom)[:5]}"
