"""The qemu rig: the SD-card image from ``make image`` booted in ``qemu-system-aarch64``, as the
image tests boot it (``hil/rigs/virtual_machine.py`` is the machinery both use). It is the ssh rig
(``hil/rigs/ssh.py``: commands, stored points, file system state, the emulated-sensor mode) with
qemu as the power switch and the machine's forwarded ports as its address:

* power: qemu; a power cut is SIGKILL of its process group, power on starts qemu again on the
  same card (attached with ``cache=writeback``, so the guest's flushes reach the host file);
  what a killed qemu does not simulate is said in ``virtual_machine.py``;
* the LAN: the gateway's device endpoint (guest port 1883) is forwarded to a fixed port on
  127.0.0.1, so a device on the host reconnects to the same address after a cut;
* uplink: the guest reaches 10.0.2.100:8428 through a ``guestfwd`` to a port reserved on this
  machine, where the rig puts the emulated rig's uplink (a VictoriaMetrics behind a fault
  proxy) on first use; a cut is the proxy's. A machine given to the rig (the image tests') has
  no such forward, and the rig lacks the uplink then.

The image: ``GATEWAY_TEST_IMAGE`` (a .img.zst or .img), else the newest
``dist/edge-gateway-*-arm64.img.zst`` (``make image``). A rig may also be given a machine that is
already running (the image tests' booted guest), which it then neither boots nor removes.
"""

from __future__ import annotations

import os
import pathlib

from hil.rigs.base import RigError, RigLacks
from hil.rigs.mosquitto import free_port
from hil.rigs.ssh import DEVICE_PORT, SshRig
from hil.rigs.virtual_machine import GUEST_UPLINK, REPO, Card, Machine, seed, tail, unpack_image

FIRST_LOGIN_TIMEOUT_S = 15 * 60
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


class _QemuPower:
    """The machine's power: kill and start qemu."""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine

    def cut(self) -> None:
        self.machine.kill()

    def restore(self) -> None:
        self.machine.start()


class QemuRig(SshRig):
    kind = "qemu"

    def __init__(self, workdir: pathlib.Path, machine: Machine | None = None) -> None:
        super().__init__(workdir, machine, machine and _QemuPower(machine))
        self.machine = machine
        self._owns_machine = machine is None
        # Reserved now: the machine's forward names it before the uplink is made.
        self._uplink_port = free_port() if machine is None else None
        self.uplink = None

    def _first_boot(self) -> Machine:
        card = Card(unpack_image(find_image(), self.workdir))
        card.grow(GROW_BY)
        machine = Machine(card, self.workdir, guest_ports=(DEVICE_PORT,), uplink_port=self._uplink_port)
        machine.install_seed(seed(machine.public_key))
        machine.start()
        machine.wait_for_login(FIRST_LOGIN_TIMEOUT_S)
        machine.ssh("cloud-init status --wait", timeout=FIRST_LOGIN_TIMEOUT_S, check=False)
        return machine

    def boot(self, config_toml: str) -> None:
        if self.machine is None:
            self.machine = self.shell = self._first_boot()
            self.power = _QemuPower(self.machine)
        super().boot(config_toml)

    def gateway_running(self) -> bool:
        return self.machine is not None and self.machine.running() and super().gateway_running()

    def log_tail(self, lines: int = 40) -> str:
        if self.machine is not None and not self.machine.running():
            return tail(self.machine.serial_log, lines)
        return super().log_tail(lines)

    def _uplink(self):
        from hil.rigs.upstreams import Uplink

        if self._uplink_port is None:
            raise RigLacks(self.kind, "upstream (a machine booted without the uplink's forward)")
        if self.uplink is None:
            self.uplink = Uplink(self.workdir / "upstream", self._uplink_port)
        return self.uplink

    def upstream_url(self) -> str:
        self._uplink()
        host, port = GUEST_UPLINK
        return f"http://{host}:{port}"

    def lan_endpoint(self) -> tuple[str, int]:
        return "127.0.0.1", self._shell().host_port(DEVICE_PORT)

    def close(self) -> None:
        if self.uplink is not None:
            self.uplink.close()
            self.uplink = None
        if self._owns_machine and self.machine is not None:
            self.machine.power_off()
            self.machine.card.remove()
        else:
            super().close()
        self.machine = self.shell = None
