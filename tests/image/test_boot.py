"""Boots the SD-card image under emulation and checks, from outside, that it provisions itself
and runs the gateway.

The image is built by image/build-image.sh (or taken from its cache when none of its inputs
changed), then booted in qemu-system-aarch64 (`-M virt -cpu cortex-a57`) with the kernel and
initrd from its own FAT partition and a seed made for this run on that partition: a user with a
fresh SSH key, and a gateway.toml with an error in it, which the gateway must report and survive.
Networking is qemu's user mode with the guest cut off from everything (restrict=on) except the
SSH port forwarded to a free port on 127.0.0.1.

The serial console log and the build log stay in build/test-artifacts/image/ when a test fails.
GATEWAY_TEST_IMAGE=path/to/edge-gateway-*.img(.zst) boots that image instead of building one.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import pathlib
import re
import shlex
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass

import pytest
import yaml

from imagetools import CLOUD_INIT, REPO, artifacts_dir, free_port, require_tool

# The first test also waits for the image build (the module's fixture): the suite's default
# per-test timeout would cut a cold build short.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(80 * 60)]

BUILD_TIMEOUT_S = 55 * 60      # cold: about 25 min on 2 shared cores; warm: seconds
FIRST_LOGIN_TIMEOUT_S = 15 * 60  # the SSH login usually works 60-90 s after power-on
SERVICE_TIMEOUT_S = 5 * 60
HOST_METRICS_TIMEOUT_S = 3 * 60  # the host reader samples every 30 s
SSH_CONNECT_ATTEMPTS = 12      # a minute of resets while sshd restarts
_SSH_TRANSPORT_ERROR = re.compile(r"kex_exchange_identification|Connection (reset|refused|closed)")
GROW_BY = 512 * 1024 * 1024     # the test card is larger than the image: the root must grow
VERSION = re.search(r'__version__ = "(.+)"', (REPO / "gateway/__init__.py").read_text()).group(1)

# A gateway.toml with a misspelt key, as a user might write it: rejected, the gateway runs anyway.
BAD_CONFIG = '[gateway]\nlog_levle = "debug"\n'
GOOD_CONFIG = '[store]\nwal_sync = "2s"\n'


def _tail(path: pathlib.Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop_group(proc: subprocess.Popen) -> None:
    """Ends a process we started in its own session, and everything it started, by its PID."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> pathlib.Path:
    """The raw image (decompressed from dist's .img.zst after its sha256 is checked)."""
    given = os.environ.get("GATEWAY_TEST_IMAGE")
    if given:
        return _given_image(pathlib.Path(given), tmp_path_factory.mktemp("given"))
    if os.geteuid() != 0:
        pytest.skip("building the image needs root (mmdebstrap, chroot under qemu-user)")
    for tool in ("qemu-system-aarch64", "mcopy", "zstd", "ssh", "ssh-keygen", "sfdisk"):
        require_tool(tool)
    subprocess.run(["bash", str(REPO / ".ci/apt-install"), str(REPO / "deps/debian-image.txt")],
                   check=True)
    dist = tmp_path_factory.mktemp("dist")
    build_log = artifacts_dir() / "build.log"
    with open(build_log, "w") as log:
        proc = subprocess.Popen(["bash", str(REPO / "image/build-image.sh")], cwd=REPO,
                                env={**os.environ, "DIST_DIR": str(dist)}, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = proc.wait(timeout=BUILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the image build took over {BUILD_TIMEOUT_S // 60} min; log: {build_log}")
        finally:
            _stop_group(proc)  # also when pytest itself is interrupted
    if rc != 0:
        pytest.fail(f"the image build failed (exit {rc}); log {build_log}:\n{_tail(build_log)}")
    (compressed,) = dist.glob("edge-gateway-*-arm64.img.zst")
    expected = compressed.with_name(compressed.name + ".sha256").read_text().split()[0]
    digest = hashlib.sha256()
    with open(compressed, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    assert digest.hexdigest() == expected, "the image does not match its .sha256"
    raw = compressed.with_suffix("")
    subprocess.run(["zstd", "-q", "-d", str(compressed), "-o", str(raw)], check=True)
    compressed.unlink()
    build_log.unlink()
    return raw


def _given_image(path: pathlib.Path, work: pathlib.Path) -> pathlib.Path:
    for tool in ("qemu-system-aarch64", "mcopy", "zstd", "ssh", "ssh-keygen", "sfdisk"):
        require_tool(tool)
    raw = work / path.name.removesuffix(".zst")
    if path.name.endswith(".zst"):
        subprocess.run(["zstd", "-q", "-d", str(path), "-o", str(raw)], check=True)
    else:
        subprocess.run(["cp", "--sparse=always", str(path), str(raw)], check=True)
    return raw


@dataclass
class Guest:
    port: int
    key: pathlib.Path
    serial_log: pathlib.Path
    qemu: subprocess.Popen
    qemu_errors: pathlib.Path
    root_partition_bytes: int
    mqtt_lan_port: int
    mqtt_device_port: int

    def ssh(self, command: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        if self.qemu.poll() is not None:
            pytest.fail(f"qemu exited ({self.qemu.returncode}): {_tail(self.qemu_errors, 5)}\n"
                        f"serial log {self.serial_log}:\n{_tail(self.serial_log)}")
        # sshd is restarted during first boot (cloud-init's ssh and password modules), so a
        # connection can be reset before the session starts; that is retried, a command's own
        # failure is not.
        for attempt in range(SSH_CONNECT_ATTEMPTS):
            proc = subprocess.run(
                ["ssh", "-i", str(self.key), "-p", str(self.port), "-o", "BatchMode=yes",
                 "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                 "-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR", "tester@127.0.0.1", command],
                capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
            if proc.returncode != 255 or not _SSH_TRANSPORT_ERROR.search(proc.stderr):
                break
            time.sleep(5)
        if check and proc.returncode != 0:
            pytest.fail(f"over SSH `{command}` exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
        return proc

    def wait_for_login(self, timeout: float) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            try:
                if self.ssh("true", timeout=60, check=False).returncode == 0:
                    return time.monotonic() - started
            except subprocess.TimeoutExpired:
                pass
            time.sleep(5)
        pytest.fail(f"no SSH login within {timeout // 60:.0f} min; serial log {self.serial_log}:\n"
                    f"{_tail(self.serial_log)}")

    def wait_until_active(self, unit: str, timeout: float = SERVICE_TIMEOUT_S) -> str:
        """Polls the unit until it is active, or fails with its status and journal."""
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.ssh(f"systemctl is-active {unit}", check=False).stdout.strip()
            if state == "active":
                return state
            if state == "failed":
                break
            time.sleep(3)
        status = self.ssh(f"systemctl status --no-pager {unit}; sudo journalctl --no-pager -n 60 -u {unit}",
                          check=False)
        pytest.fail(f"{unit} is {state!r}, not active:\n{status.stdout}{status.stderr}")

    def write_root_file(self, path: str, content: str, mode: str = "0600") -> None:
        self.ssh(f"sudo install -m {mode} /dev/stdin {shlex.quote(path)} <<'EOF'\n{content}EOF\n")


def _fat_offset(disk: pathlib.Path) -> tuple[int, int]:
    """Byte offset of the FAT partition and size of the root partition, from the MBR."""
    table = json.loads(subprocess.run(["sfdisk", "--json", str(disk)], check=True,
                                      capture_output=True, text=True).stdout)
    boot, root = table["partitiontable"]["partitions"]
    return boot["start"] * 512, root["size"] * 512


def _test_seed(public_key: str) -> dict[str, str]:
    """The image's default user-data plus a login for the test and a bad gateway.toml."""
    user_data = yaml.safe_load((CLOUD_INIT / "seed/user-data").read_text())
    user_data["users"] = [{
        "name": "tester", "groups": ["adm", "systemd-journal"], "sudo": "ALL=(ALL) NOPASSWD:ALL",
        "shell": "/bin/bash", "lock_passwd": True, "ssh_authorized_keys": [public_key]}]
    user_data["write_files"] = [{"path": "/etc/gateway/gateway.toml", "permissions": "0600",
                                 "content": BAD_CONFIG}]
    return {
        "user-data": "#cloud-config\n" + yaml.safe_dump(user_data, sort_keys=False),
        "meta-data": f"instance-id: boot-test-{uuid.uuid4()}\n",
    }


@pytest.fixture(scope="module")
def guest(image, tmp_path_factory, request):
    work = tmp_path_factory.mktemp("boot")
    disk = image
    fat_offset, root_bytes = _fat_offset(disk)
    os.truncate(disk, disk.stat().st_size + GROW_BY)
    fat = f"{disk}@@{fat_offset}"
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    for name in ("vmlinuz", "initrd.img", "cmdline.txt"):
        subprocess.run(["mcopy", "-n", "-i", fat, f"::{name}", str(work / name)], check=True, env=env)

    key = work / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "boot-test", "-f", str(key)],
                   check=True)
    for name, text in _test_seed((work / "id_ed25519.pub").read_text().strip()).items():
        (work / name).write_text(text)
        subprocess.run(["mcopy", "-o", "-i", fat, str(work / name), f"::{name}"], check=True, env=env)

    # The card's own command line, with the console on the virt machine's serial port.
    cmdline = [arg for arg in (work / "cmdline.txt").read_text().split()
               if not arg.startswith("console=") and arg != "quiet"]
    cmdline.append("console=ttyAMA0,115200")
    port, mqtt_port, device_port = free_port(), free_port(), free_port()
    while len({port, mqtt_port, device_port}) < 3:
        mqtt_port, device_port = free_port(), free_port()
    serial_log = artifacts_dir() / "serial.log"
    failures_before = request.session.testsfailed
    qemu = subprocess.Popen(
        ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a57", "-smp", "2", "-m", "1024",
         "-display", "none", "-monitor", "none", "-serial", f"file:{serial_log}", "-no-reboot",
         "-kernel", str(work / "vmlinuz"), "-initrd", str(work / "initrd.img"),
         "-append", " ".join(cmdline),
         "-drive", f"file={disk},format=raw,if=none,id=card,cache=unsafe",
         "-device", "virtio-blk-pci,drive=card",
         "-netdev", f"user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:{port}-:22"
         f",hostfwd=tcp:127.0.0.1:{mqtt_port}-:1884,hostfwd=tcp:127.0.0.1:{device_port}-:1883",
         "-device", "virtio-net-pci,netdev=net0,romfile="],  # no option ROM: direct kernel boot
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(work / "qemu.err", "w"),
        start_new_session=True)
    machine = Guest(port, key, serial_log, qemu, work / "qemu.err", root_bytes, mqtt_port,
                    device_port)
    try:
        machine.wait_for_login(FIRST_LOGIN_TIMEOUT_S)
        yield machine
    finally:
        try:
            machine.ssh("sudo systemctl poweroff", timeout=30, check=False)
            qemu.wait(timeout=60)
        except (subprocess.TimeoutExpired, pytest.fail.Exception):
            pass
        _stop_group(qemu)
        disk.unlink(missing_ok=True)  # a temporary copy: 1.6 GB not worth keeping
        if request.session.testsfailed == failures_before:
            serial_log.unlink(missing_ok=True)
        else:
            print(f"serial console log kept: {serial_log}")


def test_cloud_init_finished_with_status_done(guest):
    status = guest.ssh("cloud-init status --wait --long", timeout=15 * 60, check=False)
    assert "status: done" in status.stdout, status.stdout + status.stderr
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


def _lan_credentials(guest) -> tuple[str, str]:
    credentials = guest.ssh("sudo cat /etc/mosquitto/lan-credentials").stdout
    return (re.search(r"^username: (\S+)$", credentials, re.M).group(1),
            re.search(r"^password: (\S+)$", credentials, re.M).group(1))


def test_a_device_publishing_to_port_1883_is_acknowledged_and_stored(guest):
    """The image defaults (the seed's gateway.toml was rejected, no earlier one was good) serve
    LAN devices on 1883 with the first-boot password; the PUBACK means the value is stored."""
    import paho.mqtt.client as mqtt

    guest.wait_until_active("gateway.service")
    active = guest.ssh("sudo cat /run/gateway/gateway.toml").stdout
    assert 'listen = "0.0.0.0:1883"' in active and 'hardware = "real"' in active, active
    username, password = _lan_credentials(guest)
    device = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="boot-test-device",
                         protocol=mqtt.MQTTv311)
    device.username_pw_set(username, password)
    device.connect("127.0.0.1", guest.mqtt_device_port, keepalive=30)
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
    assert grown >= guest.root_partition_bytes + GROW_BY * 0.9, "the root partition did not grow"
    fs_bytes = int(guest.ssh("df -B1 --output=size / | tail -n1").stdout)
    assert fs_bytes > guest.root_partition_bytes, "the root file system did not grow"


def test_sd_card_care(guest):
    assert "noatime" in guest.ssh("findmnt -no OPTIONS /").stdout
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
    import threading

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
    username, password = _lan_credentials(guest)
    assert _mqtt_connect(guest.mqtt_lan_port, None, None) != "Success"
    assert _mqtt_connect(guest.mqtt_lan_port, username, "wrong" + password) != "Success"
    assert _mqtt_connect(guest.mqtt_lan_port, username, password) == "Success"
