"""The qemu rig: the SD-card image from ``make image`` booted in ``qemu-system-aarch64``, as the
image tests boot it (``hil/rigs/virtual_machine.py`` is the machinery both use). It is the ssh rig
(``hil/rigs/ssh.py``: commands, stored points, the disk (a filler on the card's root file system,
the card's counters: the virt machine's card is vda), the emulated-sensor mode) with qemu as the
power switch and the machine's forwarded ports as its address:

* power: qemu; a power cut is SIGKILL of its process group, power on starts qemu again on the
  same card (attached with ``cache=writeback``, so the guest's flushes reach the host file);
  what a killed qemu does not simulate is said in ``virtual_machine.py``;
* clock: the boot clock is the ssh rig's (fake-hwclock's and timesyncd's saves, then a power
  cycle), and the virt machine's real-time clock, which the kernel reads at boot, starts at the
  same time on every power on (qemu's ``-rtc base=``): a Pi has no such clock, so what it boots
  with is the later of the saves and this. The machine's network is closed, so timesyncd runs
  as on a Pi out of reach of any NTP server;
* the LAN: the gateway's device endpoint (guest port 1883) is forwarded to a fixed port on
  127.0.0.1, so a device on the host reconnects to the same address after a cut;
* uplink: the ssh rig's, cut by iptables on the device, so the image runs a Pi's code path. The
  guest reaches 10.0.2.100:8428 through a ``guestfwd`` to a port reserved on this machine's
  127.0.0.1, where the rig starts its VictoriaMetrics on first use. A machine given to the rig
  uses its own forward; one booted without (the image tests') leaves the rig without an uplink.

The image: ``GATEWAY_TEST_IMAGE`` (a .img.zst or .img), else the newest
``dist/edge-gateway-*-arm64.img.zst`` (``make image``). A rig may also be given a machine that is
already running (the image tests' booted guest), which it then neither boots nor removes.
"""

from __future__ import annotations

import os
import pathlib

from hil.rigs.base import RigError
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
    ntp_reachable = False   # the machine's network reaches nothing

    def __init__(self, workdir: pathlib.Path, machine: Machine | None = None) -> None:
        # Reserved now: the machine's forward names it before the upstream is started.
        uplink_port = free_port() if machine is None else machine.uplink_port
        host, port = GUEST_UPLINK
        super().__init__(workdir, machine, machine and _QemuPower(machine),
                         upstream_listen=uplink_port and ("127.0.0.1", uplink_port),
                         upstream_url=f"http://{host}:{port}")
        self.machine = machine
        self._owns_machine = machine is None

    def _first_boot(self) -> Machine:
        card = Card(unpack_image(find_image(), self.workdir))
        card.grow(GROW_BY)
        machine = Machine(card, self.workdir, guest_ports=(DEVICE_PORT,), uplink_port=self.upstream_listen[1])
        machine.install_seed(seed(machine.public_key))
        machine.start()
        machine.wait_for_login(FIRST_LOGIN_TIMEOUT_S)
        machine.ssh("cloud-init status --wait", timeout=FIRST_LOGIN_TIMEOUT_S, check=False)
        return machine

    def boot(self, config_toml: str) -> None:
        if self.machine is None:
            self.machine = self.shell = self._first_boot()
            self.power = _QemuPower(self.machine)
            self.machine.rtc_base = self._boot_clock_s
        super().boot(config_toml)

    def set_boot_clock(self, unix_s: float) -> None:
        super().set_boot_clock(unix_s)
        if self.machine is not None:
            self.machine.rtc_base = unix_s

    def gateway_running(self) -> bool:
        return self.machine is not None and self.machine.running() and super().gateway_running()

    def log_tail(self, lines: int = 40) -> str:
        if self.machine is not None and not self.machine.running():
            return tail(self.machine.serial_log, lines)
        return super().log_tail(lines)

    def lan_endpoint(self) -> tuple[str, int]:
        return "127.0.0.1", self._shell().host_port(DEVICE_PORT)

    def close(self) -> None:
        if self._owns_machine and self.machine is not None:
            self._close_uplink(device_up=False)   # the rules go with the machine
            self.machine.power_off()
            self.machine.card.remove()
        else:
            super().close()
            if self.machine is not None:  # shared with others: boots on the host's time again
                self.machine.rtc_base = None
        self.machine = self.shell = None
