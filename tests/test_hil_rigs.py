"""The rig options of hil/run: the ssh rig's address, power command and GPIO wiring (the rig
itself is tried against the booted image in tests/image/test_power_cuts.py)."""

from __future__ import annotations

import pytest

from hil.rigs import RigError, RigLacks, open_rig
from hil.rigs.device_uplink import device_target
from hil.rigs.ssh import CommandPower, SshRig, parse_endpoint, parse_gpio_loopback, parse_target


def test_ssh_target_with_and_without_port():
    assert parse_target("ssh://pi@gateway.local") == ("pi", "gateway.local", 22)
    assert parse_target("ssh://tester@127.0.0.1:2222") == ("tester", "127.0.0.1", 2222)


@pytest.mark.parametrize("spec", ["ssh://gateway.local", "ssh://pi@", "ssh://pi@host/path", "pi@host"])
def test_bad_ssh_target_names_the_expected_form(spec):
    with pytest.raises(RigError, match=r"ssh://user@host\[:port\]"):
        parse_target(spec)


def test_lan_endpoint():
    assert parse_endpoint("127.0.0.1:41883") == ("127.0.0.1", 41883)
    assert parse_endpoint(None) is None
    with pytest.raises(RigError, match="HOST:PORT"):
        parse_endpoint("gateway.local")


def test_gpio_loopback_pairs():
    assert parse_gpio_loopback("17:27,22:23") == {17: 27, 22: 23}
    assert parse_gpio_loopback(None) == {}
    with pytest.raises(RigError, match="'17-27'"):
        parse_gpio_loopback("17-27")


def test_power_command_runs_with_the_state(tmp_path):
    log = tmp_path / "switch.log"
    power = CommandPower(f"echo {{state}} >> {log}")
    power.cut()
    power.restore()
    assert log.read_text().split() == ["off", "on"]


def test_power_command_failure_is_reported_with_its_output():
    power = CommandPower("echo relay {state} not found >&2; exit 3")
    with pytest.raises(RigError, match=r"exited 3:\nrelay off not found"):
        power.cut()


def test_power_command_must_name_the_state():
    with pytest.raises(RigError, match="must contain"):
        CommandPower("relay-switch 3")


def test_ssh_rig_needs_a_power_command(tmp_path):
    with pytest.raises(RigError, match="--power-command"):
        open_rig("ssh://pi@gateway.local", tmp_path)
    rig = open_rig("ssh://pi@gateway.local:2222", tmp_path, power_command="true {state}",
                   gpio_loopback="17:27", lan_endpoint="127.0.0.1:41883")
    assert isinstance(rig, SshRig) and rig.shell.port == 2222 and rig.gpio_loopback == {17: 27}
    assert rig.lan_endpoint() == ("127.0.0.1", 41883)


def test_ssh_rig_without_wiring_lacks_gpio_stimulus(tmp_path):
    rig = open_rig("ssh://pi@gateway.local", tmp_path, power_command="true {state}")
    with pytest.raises(RigLacks, match="GPIO17"):
        rig.press(17)
    with pytest.raises(RigLacks, match="i2c faults"):
        rig.i2c_fault(1, 0x44, "vanish")


def test_ssh_rig_without_an_upstream_address_lacks_the_uplink_and_lacks_a_clock_advance(tmp_path):
    rig = open_rig("ssh://pi@gateway.local", tmp_path, power_command="true {state}")
    for capability in (rig.upstream_url, rig.uplink_cut, rig.uplink_restore, rig.upstream_points):
        with pytest.raises(RigLacks, match="--upstream-listen"):
            capability()
    with pytest.raises(RigLacks, match="clock advance"):
        rig.advance_clock(5)


def test_upstream_listen_and_the_url_the_device_uses(tmp_path):
    assert parse_endpoint("192.168.1.10:8428", "--upstream-listen") == ("192.168.1.10", 8428)
    for bad in ("192.168.1.10", ":8428", "host:0", "host:http"):
        with pytest.raises(RigError, match="--upstream-listen takes HOST:PORT"):
            parse_endpoint(bad, "--upstream-listen")
    assert device_target("http://10.0.2.100:8428") == ("10.0.2.100", 8428)
    assert device_target("http://bench.local:8428/") == ("bench.local", 8428)
    for bad in ("https://bench.local:8428", "http://bench.local", "bench.local:8428", "http://h:99999"):
        with pytest.raises(RigError, match="--upstream-url takes http://HOST:PORT"):
            device_target(bad)
    with pytest.raises(RigError, match="IPv4 only"):
        device_target("http://[fd00::1]:8428")
    with pytest.raises(RigError, match="--upstream-url"):
        open_rig("ssh://pi@gateway.local", tmp_path, power_command="true {state}",
                 upstream_listen="192.168.1.10:8428", upstream_url="192.168.1.10:8428")


def test_ssh_rig_upstream_listens_where_given_and_the_device_uses_its_url(tmp_path):
    from hil.rigs.mosquitto import free_port

    port = free_port()
    rig = open_rig("ssh://pi@gateway.local", tmp_path, power_command="true {state}",
                   upstream_listen=f"127.0.0.1:{port}", upstream_url="http://10.0.2.100:8428")
    try:
        assert rig.upstream_url() == "http://10.0.2.100:8428"
        assert rig.uplink.upstream.url == f"http://127.0.0.1:{port}"
        assert rig.upstream_points() == {}    # the real VictoriaMetrics answers, empty
    finally:
        rig.close()
    assert rig.uplink is None


# Run as root in a network namespace of its own: the cut's rules against a server on its
# loopback, as the device's gateway meets them (an open connection, a new one, another port).
_CUT_IN_A_NAMESPACE = """
import json, socket, subprocess, sys, time
from hil.rigs.device_uplink import cut_script, restore_script
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
upstream = socket.create_server(("127.0.0.1", 8428))
lan = socket.create_server(("127.0.0.1", 1883))
seen = {}
def attempt(name, port, open_connection=None):
    try:
        c = open_connection or socket.create_connection(("127.0.0.1", port), timeout=5)
        c.sendall(b"POST /api/v2/write"); time.sleep(0.3); c.sendall(b"more")
        seen[name] = "passed"
    except OSError as e:
        seen[name] = type(e).__name__
def sh(script):
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True).returncode
kept_alive = socket.create_connection(("127.0.0.1", 8428), timeout=5)
seen["cut"] = sh(cut_script("127.0.0.1", 8428))
seen["cut again"] = sh(cut_script("127.0.0.1", 8428))
attempt("open connection while cut", 8428, kept_alive)
attempt("new connection while cut", 8428)
attempt("LAN port while cut", 1883)
seen["restore"] = sh(restore_script())
seen["rules left"] = subprocess.run(["iptables", "-S"], capture_output=True, text=True).stdout.splitlines()
attempt("new connection after the restore", 8428)
seen["restore again"] = sh(restore_script())
print(json.dumps(seen))
"""


def test_the_uplink_cut_resets_the_upstream_connections_only_and_its_restore_leaves_no_rule():
    import json
    import os
    import shutil
    import subprocess
    import sys

    from hil.rigs.virtual_machine import REPO

    assert os.geteuid() == 0 and shutil.which("iptables"), "needs root and iptables (deps/debian-test.txt)"
    proc = subprocess.run(["unshare", "--net", sys.executable, "-c", _CUT_IN_A_NAMESPACE], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen == {
        "cut": 0, "cut again": 0,
        "open connection while cut": "ConnectionResetError",
        "new connection while cut": "ConnectionRefusedError",
        "LAN port while cut": "passed",
        "restore": 0,
        "rules left": ["-P INPUT ACCEPT", "-P FORWARD ACCEPT", "-P OUTPUT ACCEPT"],
        "new connection after the restore": "passed",
        "restore again": 0,
    }


def test_emulated_rig_advances_only_its_emulated_clock(tmp_path):
    rig = open_rig("emulated", tmp_path)
    with pytest.raises(RigError, match="set_boot_clock"):
        rig.advance_clock(5)


def _relay_to(port: int):
    """guest_relay.py as qemu starts it: the guest's connection (one end of a socket pair) as
    its stdin and stdout; returns (the guest's end, the relay process)."""
    import socket
    import subprocess
    import sys

    from hil.rigs.virtual_machine import GUEST_RELAY

    guest, relay_end = socket.socketpair()
    proc = subprocess.Popen([sys.executable, str(GUEST_RELAY), str(port)], stdin=relay_end,
                            stdout=relay_end, stderr=relay_end)
    relay_end.close()
    guest.settimeout(30)
    return guest, proc


def test_guest_relay_carries_a_connection_to_the_host_port_both_ways():
    import socket

    with socket.create_server(("127.0.0.1", 0)) as server:
        guest, proc = _relay_to(server.getsockname()[1])
        server.settimeout(30)
        host, _ = server.accept()
        with host, guest:
            guest.sendall(b"POST /api/v2/write")
            assert host.recv(100) == b"POST /api/v2/write"
            host.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
            assert guest.recv(100) == b"HTTP/1.1 204 No Content\r\n\r\n"
            guest.shutdown(socket.SHUT_WR)          # the guest's close reaches the host ...
            assert host.recv(100) == b""
            host.close()                             # ... and the host's the guest
            assert guest.recv(100) == b""
    assert proc.wait(30) == 0


def test_guest_relay_closes_the_guests_connection_when_nothing_listens():
    from hil.rigs.mosquitto import free_port

    guest, proc = _relay_to(free_port())
    with guest:
        assert guest.recv(100) == b""               # closed, nothing written into it
    assert proc.wait(30) == 1
