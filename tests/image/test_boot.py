"""Boots the SD-card image under emulation and checks, from outside, that it provisions itself
and runs the gateway.

The booted machine (the `guest` fixture in conftest.py) runs on a seed made for this run: a user
with a fresh SSH key, and a gateway.toml with an error in it, which the gateway must report and
survive.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import threading
import time

import pytest

from hil.rigs.ssh import SERVICE_TIMEOUT_S
from imagetools import BAD_CONFIG, GROW_BY, REPO

# The first test also waits for the image build (the session's fixture): the suite's default
# per-test timeout would cut a cold build short.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(80 * 60)]

HOST_METRICS_TIMEOUT_S = 3 * 60  # the host reader samples every 30 s
VERSION = re.search(r'__version__ = "(.+)"', (REPO / "gateway/__init__.py").read_text()).group(1)
GOOD_CONFIG = '[store]\nwal_sync = "2s"\n'


def test_cloud_init_provisioned_the_card_once(guest):
    status = guest.ssh("cloud-init status --wait --long", timeout=15 * 60, check=False)
    # Done, or already switched off for later boots by edge-gateway-provisioned.service.
    assert re.search(r"status: (done|disabled)", status.stdout), status.stdout + status.stderr
    guest.wait_until_active("edge-gateway-provisioned.service")
    marker = guest.ssh("cat /etc/cloud/cloud-init.disabled").stdout
    instance_id = guest.ssh("cat /var/lib/cloud/data/instance-id").stdout.strip()
    assert f"provisioned instance {instance_id}" in marker, marker
    result = json.loads(guest.ssh("cat /run/cloud-init/result.json").stdout)
    assert result["v1"]["errors"] == [], result
    assert result["v1"]["datasource"].startswith("DataSourceNoCloud"), result
    # For the log: how long after power-on provisioning finished ("... Up 71.2 seconds").
    print(guest.ssh("grep 'finished at' /var/log/cloud-init-output.log", check=False).stdout.strip())


def test_gateway_service_is_active_as_unprivileged_user(guest):
    guest.wait_until_active("gateway.service")
    show = guest.ssh("systemctl show gateway.service -p Type -p User -p WatchdogUSec -p Restart").stdout
    assert "Type=notify" in show and "User=gateway" in show and "Restart=on-failure" in show, show
    assert "WatchdogUSec=30s" in show, show
    groups = guest.ssh("id -nG gateway").stdout.split()
    assert "i2c" in groups and "gpio" in groups, groups
    main_pid = guest.ssh("systemctl show -p MainPID --value gateway.service").stdout.strip()
    assert guest.ssh(f"ps -o user= -p {main_pid}").stdout.split() == ["gateway"]


def test_gateway_answers(guest):
    out = guest.ssh("gateway version").stdout
    assert VERSION in out, out


def test_status_page_on_port_80_announced_by_avahi(guest):
    """The unprivileged daemon binds port 80 on every interface (CAP_NET_BIND_SERVICE) and
    avahi announces the host and the page."""
    guest.wait_until_active("gateway.service")
    guest.wait_until_active("avahi-daemon.service")
    fetch = ("python3 -c \"import urllib.request as u; r = u.urlopen('http://127.0.0.1/api/status/overview', "
             "timeout=30); print(r.status, r.read().decode())\"")
    status, _, body = guest.ssh(fetch).stdout.strip().partition(" ")
    assert status == "200" and '"components"' in body, body
    listening = guest.ssh("ss -Htln 'sport = :80'").stdout
    assert "0.0.0.0:80" in listening, listening
    assert guest.ssh("test -r /etc/avahi/services/edge-gateway.service", check=False).returncode == 0


def test_gateway_stores_host_metrics(guest):
    """The built-in configuration's host reader writes into the local store; `gateway export`
    reads them back through the running daemon."""
    guest.wait_until_active("gateway.service")
    command = ("cd / && sudo -u gateway gateway export --data-dir /var/lib/gateway "
               "--bucket raw --measurement host_system")
    deadline = time.monotonic() + HOST_METRICS_TIMEOUT_S
    while True:
        proc = guest.ssh(command, check=False, timeout=180)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("host_system")]
        if lines or time.monotonic() > deadline:
            break
        time.sleep(10)
    assert lines, f"no host_system points stored; `{command}` said:\n{proc.stdout}{proc.stderr}"
    assert any("load1=" in line for line in lines), lines


def test_real_gpio_library_opens_a_gpio_chip_as_the_service_would(guest):
    # lgpio is what gpiozero drives a Pi's pins with. The emulated board's PL061 controller is
    # a real GPIO chip to the kernel: opening it as the gateway user, from the service's working
    # directory (lgpio makes a FIFO there on import), is what a GPIO reader does on a Pi.
    assert guest.ssh("systemctl show -p WorkingDirectory --value gateway.service").stdout.strip() \
        == "/run/gateway"
    assert guest.ssh("ls /dev/gpiochip0", check=False).returncode == 0, "no GPIO chip in the guest"
    guest.wait_until_active("gateway.service")   # /run/gateway exists while it runs
    script = ("import lgpio; h = lgpio.gpiochip_open(0); print(lgpio.gpio_get_chip_info(h)); "
              "lgpio.gpiochip_close(h)")
    inner = f"cd /run/gateway && /opt/edge-gateway/bin/python -c {shlex.quote(script)}"
    out = guest.ssh(f"sudo -u gateway sh -c {shlex.quote(inner)}").stdout
    status, lines, name, _label = ast.literal_eval(out.strip())   # the tuple lgpio printed
    assert (status, name) == (0, "gpiochip0") and lines > 0, out


def test_bad_config_from_cloud_init_is_reported_and_survived(guest):
    guest.wait_until_active("gateway.service")
    errors = guest.ssh("journalctl --no-pager -b -u gateway -p err").stdout
    assert "log_levle" in errors, errors
    assert "the image defaults" in errors, errors
    assert "log_levle" in guest.ssh("sudo cat /run/gateway/config-errors").stdout


def test_a_device_publishing_to_port_1883_is_acknowledged_and_stored(guest):
    """The image defaults (the seed's gateway.toml was rejected, no earlier one was good) serve
    LAN devices on 1883 with the first-boot password; the PUBACK means the value is stored."""
    import paho.mqtt.client as mqtt

    guest.wait_until_active("gateway.service")
    active = guest.ssh("sudo cat /run/gateway/gateway.toml").stdout
    assert 'listen = "0.0.0.0:1883"' in active and 'hardware = "real"' in active, active
    username, password = guest.lan_credentials()
    device = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="boot-test-device",
                         protocol=mqtt.MQTTv311)
    device.username_pw_set(username, password)
    device.connect("127.0.0.1", guest.host_port(1883), keepalive=30)
    device.loop_start()
    try:
        info = device.publish("sensors/boot/dev1/temperature", "21.5", qos=1)
        info.wait_for_publish(timeout=60)
        assert info.is_published(), "no PUBACK from the gateway's device endpoint within 60 s"
    finally:
        device.disconnect()
        device.loop_stop()
    out = guest.ssh("cd / && sudo -u gateway gateway export --data-dir /var/lib/gateway "
                    "--bucket raw --measurement sensors").stdout
    assert "sensors,device=dev1,site=boot temperature=21.5 " in out, out


def test_a_valid_config_is_kept_and_survives_a_later_bad_one(guest):
    guest.write_root_file("/etc/gateway/gateway.toml", GOOD_CONFIG)
    guest.ssh("sudo systemctl restart gateway.service", timeout=SERVICE_TIMEOUT_S)
    guest.wait_until_active("gateway.service")
    assert guest.ssh("sudo cat /var/lib/gateway/last-good.toml").stdout == GOOD_CONFIG
    assert guest.ssh("sudo cat /run/gateway/gateway.toml").stdout == GOOD_CONFIG

    guest.write_root_file("/etc/gateway/gateway.toml", BAD_CONFIG)
    guest.ssh("sudo systemctl restart gateway.service", timeout=SERVICE_TIMEOUT_S)
    guest.wait_until_active("gateway.service")
    assert guest.ssh("sudo cat /run/gateway/gateway.toml").stdout == GOOD_CONFIG
    errors = guest.ssh("journalctl --no-pager -b -u gateway -p err -n 5").stdout
    assert "last good configuration" in errors, errors


def test_first_boot_made_the_card_this_device(guest):
    machine_id = guest.ssh("cat /etc/machine-id").stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{32}", machine_id), machine_id
    keys = guest.ssh("ls /etc/ssh/").stdout.split()
    assert "ssh_host_ed25519_key" in keys, keys
    grown = int(guest.ssh("lsblk -bno SIZE /dev/vda2").stdout)
    assert grown >= guest.card.root_bytes + GROW_BY * 0.9, "the root partition did not grow"
    fs_bytes = int(guest.ssh("df -B1 --output=size / | tail -n1").stdout)
    assert fs_bytes > guest.card.root_bytes, "the root file system did not grow"


def test_sd_card_care(guest):
    # noatime: no write per read; lazytime: a write's mtime stays in memory; commit=60: the
    # system's small writes share one ext4 journal commit a minute (image/assemble.sh).
    options = guest.ssh("findmnt -no OPTIONS /").stdout.strip().split(",")
    assert {"noatime", "lazytime", "commit=60"} <= set(options), options
    assert guest.ssh("findmnt -no FSTYPE /tmp").stdout.strip() == "tmpfs"
    swaps = guest.ssh("cat /proc/swaps").stdout.splitlines()
    assert len(swaps) == 1, swaps  # the header line only
    assert guest.ssh("findmnt -no FSTYPE /boot/firmware").stdout.strip() == "vfat"
    assert guest.ssh("systemctl is-active fake-hwclock.service").stdout.strip() == "active"


def test_mosquitto_listens_on_loopback_and_with_a_password_on_the_lan(guest):
    # Port 1883 is the gateway's own device endpoint (when gateway.toml configures it); mosquitto
    # serves subscribers on 127.0.0.1:1885 and, with a password, on 1884.
    guest.wait_until_active("mosquitto.service")
    listening = guest.ssh("ss -Hltn").stdout
    assert "127.0.0.1:1885" in listening, listening
    assert re.search(r"(0\.0\.0\.0|\*|\[::\]):1884", listening), listening
    assert guest.ssh("sudo test -s /etc/mosquitto/lan.passwd && sudo test -s /etc/mosquitto/lan-credentials",
                     check=False).returncode == 0
    # The gateway's copy of the same hashes, readable by its group only.
    assert guest.ssh("sudo stat -c '%U:%G %a' /etc/gateway/lan.passwd").stdout.strip() == "root:gateway 640"
    assert guest.ssh("sudo cmp /etc/mosquitto/lan.passwd /etc/gateway/lan.passwd", check=False).returncode == 0


def _mqtt_connect(port: int, username: str | None, password: str | None) -> str:
    """The broker's answer to a CONNECT on 127.0.0.1:port ("Success", "Not authorized", ...)."""
    import paho.mqtt.client as mqtt

    answered = threading.Event()
    answer: list[str] = []

    def on_connect(client, userdata, flags, reason_code, properties):
        answer.append(str(reason_code))
        answered.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.on_connect = on_connect
    if username is not None:
        client.username_pw_set(username, password)
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    try:
        assert answered.wait(60), "no CONNACK from the LAN listener within 60 s"
    finally:
        client.disconnect()
        client.loop_stop()
    return answer[0]


def test_lan_mqtt_listener_takes_the_password_made_on_first_boot(guest):
    guest.wait_until_active("mosquitto.service")
    username, password = guest.lan_credentials()
    assert _mqtt_connect(guest.host_port(1884), None, None) != "Success"
    assert _mqtt_connect(guest.host_port(1884), username, "wrong" + password) != "Success"
    assert _mqtt_connect(guest.host_port(1884), username, password) == "Success"
