"""The qemu rig: the SD-card image from ``make image`` booted in ``qemu-system-aarch64``, as the
image tests boot it (``hil/rigs/virtual_machine.py`` is the machinery both use).

* power: qemu; a power cut is SIGKILL of its process group, power on starts qemu again on the
  same card (attached with ``cache=writeback``, so the guest's flushes reach the host file);
  what a killed qemu does not simulate is said in ``virtual_machine.py``;
* commands and stored points: ``gateway ...`` over SSH as the service's user, with the service's
  data directory (``gateway export`` reads through the running daemon's control socket);
* the LAN: the gateway's device endpoint (guest port 1883) is forwarded to a fixed port on
  127.0.0.1, so a device on the host reconnects to the same address after a
  cut; subscribers are the image's mosquitto on the guest's 127.0.0.1:1885;
* disk: the root file system's state from its own superblock (``tune2fs -l``).

The image: ``GATEWAY_TEST_IMAGE`` (a .img.zst or .img), else the newest
``dist/edge-gateway-*-arm64.img.zst`` (``make image``). A rig may also be given a machine that is
already running (the image tests' booted guest), which it then neither boots nor removes.
"""

from __future__ import annotations

import os
import pathlib
import shlex
import time

from hil.rigs.base import Rig, RigError
from hil.rigs.virtual_machine import (REPO, SERVICE_TIMEOUT_S, Card, Machine, seed, tail,
                                      unpack_image)

GATEWAY_TOML = "/etc/gateway/gateway.toml"
ACTIVE_TOML = "/run/gateway/gateway.toml"   # what select-config chose for this start
DATA_DIR = "/var/lib/gateway"
DEVICE_PORT = 1883
FIRST_LOGIN_TIMEOUT_S = 15 * 60
LOGIN_TIMEOUT_S = 10 * 60
GROW_BY = 512 * 1024 * 1024


def find_image() -> pathlib.Path:
    given = os.environ.get("GATEWAY_TEST_IMAGE")
    if given:
        return pathlib.Path(given)
    built = sorted((REPO / "dist").glob("edge-gateway-*-arm64.img.zst"), key=lambda p: p.stat().st_mtime)
    if not built:
        raise RigError("no image: run `make image` (dist/edge-gateway-*-arm64.img.zst) or set "
                       "GATEWAY_TEST_IMAGE")
    return built[-1]


class QemuRig(Rig):
    kind = "qemu"

    def __init__(self, workdir: pathlib.Path, machine: Machine | None = None) -> None:
        self.workdir = pathlib.Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.machine = machine
        self._owns_machine = machine is None

    # -- the device under test ---------------------------------------------------------
    def _first_boot(self) -> Machine:
        card = Card(unpack_image(find_image(), self.workdir))
        card.grow(GROW_BY)
        machine = Machine(card, self.workdir, guest_ports=(DEVICE_PORT,))
        machine.install_seed(seed(machine.public_key))
        machine.start()
        machine.wait_for_login(FIRST_LOGIN_TIMEOUT_S)
        machine.ssh("cloud-init status --wait", timeout=FIRST_LOGIN_TIMEOUT_S, check=False)
        return machine

    def boot(self, config_toml: str) -> None:
        if self.machine is None:
            self.machine = self._first_boot()
        m = self.machine
        m.write_root_file(GATEWAY_TOML, config_toml)
        m.ssh("sudo systemctl restart gateway.service", timeout=SERVICE_TIMEOUT_S)
        m.wait_until_active("gateway.service")
        active = m.ssh(f"sudo cat {ACTIVE_TOML}").stdout
        if active != config_toml:
            errors = m.ssh("sudo cat /run/gateway/config-errors", check=False).stdout
            raise RigError(f"the gateway rejected the scenario's configuration:\n{errors}")

    def power_cut(self) -> None:
        self._machine().kill()

    def power_on(self) -> float:
        m = self._machine()
        started = time.monotonic()
        m.start()
        m.wait_for_login(LOGIN_TIMEOUT_S)
        m.wait_until_active("gateway.service")
        return time.monotonic() - started

    def restart_gateway(self) -> None:
        m = self._machine()
        m.ssh("sudo systemctl restart gateway.service", timeout=SERVICE_TIMEOUT_S)
        m.wait_until_active("gateway.service")

    def gateway_running(self) -> bool:
        m = self._machine()
        return m.running() and m.ssh("systemctl is-active gateway.service", check=False).stdout.strip() == "active"

    def gateway(self, *args: str, timeout: float = 120) -> tuple[int, bytes, str]:
        if not args:
            raise ValueError("which gateway command?")
        words = list(args) + (["--data-dir", DATA_DIR] if args[0] != "version" else [])
        # From /: the gateway user may not read the login's home directory.
        command = "cd / && sudo -u gateway gateway " + " ".join(shlex.quote(w) for w in words)
        p = self._machine().ssh(command, timeout=timeout, check=False, text=False)
        return p.returncode, p.stdout, p.stderr.decode(errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        if self.machine is None:
            return ""
        if self.machine.running():
            try:
                return self.machine.ssh(f"sudo journalctl --no-pager -b -n {lines} -u gateway.service",
                                        check=False, timeout=60).stdout
            except Exception as e:  # the log is evidence for a failure already being reported
                return f"(journal not readable: {e})"
        return tail(self.machine.serial_log, lines)

    # -- storage -----------------------------------------------------------------------
    def filesystem_state(self) -> str:
        m = self._machine()
        device = m.ssh("findmnt -no SOURCE /").stdout.strip()
        superblock = m.ssh(f"sudo tune2fs -l {shlex.quote(device)}").stdout
        fields = dict(line.split(":", 1) for line in superblock.splitlines() if ":" in line)
        state = fields.get("Filesystem state", "").strip()
        errors = fields.get("FS Error count", "0").strip()
        return state if errors == "0" else f"{state}, {errors} errors recorded"

    # -- the LAN ------------------------------------------------------------------------
    def device_listener(self) -> tuple[str, str]:
        return f"0.0.0.0:{DEVICE_PORT}", "/etc/gateway/lan.passwd"

    def subscriber_broker_url(self) -> str:
        return "mqtt://127.0.0.1:1885"

    def mqtt_device_endpoint(self) -> tuple[str, int, str | None, str | None]:
        m = self._machine()
        user, password = m.lan_credentials()
        return "127.0.0.1", m.host_port(DEVICE_PORT), user, password

    def close(self) -> None:
        if self._owns_machine and self.machine is not None:
            self.machine.power_off()
            self.machine.card.remove()
        self.machine = None

    def _machine(self) -> Machine:
        if self.machine is None:
            raise RigError("the qemu rig has not booted yet")
        return self.machine
