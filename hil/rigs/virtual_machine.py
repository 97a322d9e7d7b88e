"""The SD-card image booted in ``qemu-system-aarch64``: one machinery for the image tests
(``tests/image``) and the qemu rig (``hil/rigs/qemu.py``).

* the image: built by ``image/build-image.sh`` (or taken from its cache), checked against its
  ``.sha256`` and decompressed into a file that serves as the card;
* the card: an MBR with the FAT boot partition (kernel, initrd, command line, the NoCloud seed)
  and the root partition; a seed of our own (a login with a fresh SSH key) is written onto the
  FAT partition before the first boot;
* the machine: ``-M virt -cpu cortex-a57`` booted with the kernel and initrd of the card's own
  FAT partition, networking in qemu's user mode cut off from everything (``restrict=on``) but the
  guest ports forwarded to 127.0.0.1. The forwarded host ports stay the same across boots, so a
  client reconnects to the same address after a power cut. With an uplink port the guest's
  connections to ``GUEST_UPLINK`` (10.0.2.100:8428) go to that port on this machine's 127.0.0.1
  (a ``guestfwd``, one ``guest_relay.py`` per connection; ``restrict=on`` does not affect
  forwarding rules): the qemu rig's upstream behind its fault proxy;
* the card is attached with ``cache=writeback`` by default: the guest sees a volatile write cache
  and its flushes (fsync, journal commits) are passed on as fdatasync of the host file, as an SD
  card's controller is told to flush. ``cache=unsafe`` would ignore them;
* a power cut is SIGKILL of qemu's process group; powering on again starts qemu on the same card.
  What that does not simulate: writes qemu had already handed to the host kernel survive in the
  host's page cache even when the guest never flushed them, and torn sectors or a card losing
  its own cache are not modelled.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shlex
import signal
import subprocess
import sys
import time
import uuid

import yaml

from hil.rigs.base import RigError
from hil.rigs.mosquitto import free_port
from hil.rigs.ssh import SERVICE_TIMEOUT_S, Shell

REPO = pathlib.Path(__file__).resolve().parents[2]
CLOUD_INIT = REPO / "cloud-init"
TOOLS = ("qemu-system-aarch64", "mcopy", "zstd", "ssh", "ssh-keygen", "sfdisk")

BUILD_TIMEOUT_S = 55 * 60      # cold: about 25 min on 2 shared cores; warm: seconds
SSH_USER = "tester"
#: Where the guest reaches its uplink (an address of qemu's user network, no host of its own).
GUEST_UPLINK = ("10.0.2.100", 8428)
GUEST_RELAY = pathlib.Path(__file__).resolve().parent / "guest_relay.py"


class MachineError(RigError):
    """The virtual machine or the image did not do what was asked (the message says what)."""


def tail(path: pathlib.Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop_group(proc: subprocess.Popen, signum: int = signal.SIGTERM, timeout: float = 20) -> None:
    """Ends a process started in a session of its own, and everything it started, by its PID."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signum)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        pass


# -- the image ---------------------------------------------------------------------------------
class ImageBuild:
    """image/build-image.sh run into ``dist`` (as root) in the background: started at once,
    :meth:`result` waits for it and returns the .img.zst it made."""

    def __init__(self, dist: pathlib.Path, build_log: pathlib.Path) -> None:
        self.dist, self.build_log = dist, build_log
        self.started = time.monotonic()
        with open(build_log, "w") as log:
            self.proc = subprocess.Popen(["bash", str(REPO / "image/build-image.sh")], cwd=REPO,
                                         env={**os.environ, "DIST_DIR": str(dist)},
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def result(self) -> pathlib.Path:
        try:
            rc = self.proc.wait(timeout=max(0.0, BUILD_TIMEOUT_S - (time.monotonic() - self.started)))
        except subprocess.TimeoutExpired:
            raise MachineError(f"the image build took over {BUILD_TIMEOUT_S // 60} min; "
                               f"log: {self.build_log}") from None
        finally:
            self.stop()
        if rc != 0:
            raise MachineError(f"the image build failed (exit {rc}); log {self.build_log}:\n"
                               f"{tail(self.build_log)}")
        (compressed,) = self.dist.glob("edge-gateway-*-arm64.img.zst")
        return compressed

    def stop(self) -> None:
        """Stops the build if it still runs (a run interrupted or ended before it was needed)."""
        stop_group(self.proc)


def unpack_image(image: pathlib.Path, work: pathlib.Path) -> pathlib.Path:
    """A raw copy of ``image`` (.img.zst, checked against its .sha256 when there is one, or a raw
    .img) in ``work``: the card a machine boots from, written to by the guest."""
    raw = work / image.name.removesuffix(".zst")
    if image.name.endswith(".zst"):
        checksum = image.with_name(image.name + ".sha256")
        if checksum.exists():
            digest = hashlib.sha256()
            with open(image, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            if digest.hexdigest() != checksum.read_text().split()[0]:
                raise MachineError(f"{image} does not match its .sha256")
        subprocess.run(["zstd", "-q", "-d", str(image), "-o", str(raw)], check=True)
    else:
        subprocess.run(["cp", "--sparse=always", str(image), str(raw)], check=True)
    return raw


# -- the card ----------------------------------------------------------------------------------
class Card:
    """The card's file: its partitions, and files on its FAT boot partition (through mtools)."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        table = json.loads(subprocess.run(["sfdisk", "--json", str(path)], check=True,
                                          capture_output=True, text=True).stdout)
        boot, root = table["partitiontable"]["partitions"]
        self.boot_offset = boot["start"] * 512
        self.root_bytes = root["size"] * 512
        self._mtools_env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}

    def grow(self, nbytes: int) -> None:
        """A larger card than the image: the root partition grows on first boot."""
        os.truncate(self.path, self.path.stat().st_size + nbytes)

    def read_boot_file(self, name: str, dest: pathlib.Path) -> None:
        subprocess.run(["mcopy", "-n", "-i", f"{self.path}@@{self.boot_offset}", f"::{name}", str(dest)],
                       check=True, env=self._mtools_env)

    def write_boot_file(self, src: pathlib.Path, name: str) -> None:
        subprocess.run(["mcopy", "-o", "-i", f"{self.path}@@{self.boot_offset}", str(src), f"::{name}"],
                       check=True, env=self._mtools_env)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)  # 1.6 GB not worth keeping


def seed(public_key: str, write_files: list[dict] | None = None) -> dict[str, str]:
    """The image's default user-data plus a login (sudo without password) for the SSH key, and
    the files given; a new instance id, so cloud-init provisions the card as a new device."""
    user_data = yaml.safe_load((CLOUD_INIT / "seed/user-data").read_text())
    user_data["users"] = [{
        "name": SSH_USER, "groups": ["adm", "systemd-journal"], "sudo": "ALL=(ALL) NOPASSWD:ALL",
        "shell": "/bin/bash", "lock_passwd": True, "ssh_authorized_keys": [public_key]}]
    if write_files:
        user_data["write_files"] = write_files
    return {
        "user-data": "#cloud-config\n" + yaml.safe_dump(user_data, sort_keys=False),
        "meta-data": f"instance-id: test-{uuid.uuid4()}\n",
    }


# -- the machine -------------------------------------------------------------------------------
class Machine(Shell):
    """The virtual Pi: qemu on a card, with guest ports forwarded to fixed ports on 127.0.0.1;
    commands reach it as they reach a real Pi, over SSH (:class:`Shell`)."""

    error = MachineError

    def __init__(self, card: Card, work: pathlib.Path, guest_ports: tuple[int, ...] = (),
                 serial_log: pathlib.Path | None = None, cache: str = "writeback",
                 memory_mib: int = 1024, uplink_port: int | None = None) -> None:
        self.card, self.work, self.cache, self.memory_mib = card, work, cache, memory_mib
        self.uplink_port = uplink_port
        self.serial_log = serial_log or work / "serial.log"
        self.qemu_errors = work / "qemu.err"
        self.qemu: subprocess.Popen | None = None
        self.boots = 0
        #: The real-time clock's time at power on (Unix seconds), or None for the host's time.
        self.rtc_base: float | None = None
        ports: set[int] = set()
        while len(ports) < 1 + len(guest_ports):
            ports.add(free_port())
        self.forwarded = dict(zip((22, *guest_ports), sorted(ports)))
        for name in ("vmlinuz", "initrd.img", "cmdline.txt"):
            card.read_boot_file(name, work / name)
        # The card's own command line, with the console on the virt machine's serial port.
        self.cmdline = [arg for arg in (work / "cmdline.txt").read_text().split()
                        if not arg.startswith("console=") and arg != "quiet"]
        self.cmdline.append("console=ttyAMA0,115200")
        key = work / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "virtual-pi",
                        "-f", str(key)], check=True)
        super().__init__(SSH_USER, "127.0.0.1", self.forwarded[22], key)

    @property
    def public_key(self) -> str:
        return self.key.with_suffix(".pub").read_text().strip()

    def host_port(self, guest_port: int) -> int:
        return self.forwarded[guest_port]

    def install_seed(self, files: dict[str, str]) -> None:
        """Writes a NoCloud seed (user-data, meta-data...) onto the card's boot partition."""
        for name, text in files.items():
            (self.work / name).write_text(text)
            self.card.write_boot_file(self.work / name, name)

    # -- power -------------------------------------------------------------------------
    def _qemu_argv(self) -> list[str]:
        forwards = ",".join(f"hostfwd=tcp:127.0.0.1:{host}-:{guest}" for guest, host in self.forwarded.items())
        if self.uplink_port is not None:
            # A program per connection: a chardev (the other guestfwd form) is one connection
            # for the machine's life. (No commas: they separate -netdev's options.)
            host, port = GUEST_UPLINK
            forwards += (f",guestfwd=tcp:{host}:{port}-cmd:{sys.executable} {GUEST_RELAY} "
                         f"{self.uplink_port}")
        return ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a57", "-smp", "2",
                "-m", str(self.memory_mib), "-display", "none", "-monitor", "none", "-no-reboot",
                "-chardev", f"file,id=console,path={self.serial_log},append=on", "-serial", "chardev:console",
                "-kernel", str(self.work / "vmlinuz"), "-initrd", str(self.work / "initrd.img"),
                "-append", " ".join(self.cmdline),
                "-drive", f"file={self.card.path},format=raw,if=none,id=card,cache={self.cache}",
                "-device", "virtio-blk-pci,drive=card",
                "-netdev", f"user,id=net0,restrict=on,{forwards}",
                "-device", "virtio-net-pci,netdev=net0,romfile=",  # no option ROM: direct kernel boot
                "-rtc", self._rtc_option()]

    def _rtc_option(self) -> str:
        """The virt machine's PL031 real-time clock, which the kernel reads at boot: the host's
        time, or ``rtc_base`` at every power on (then running on with the host's clock), as a
        board whose clock starts from the same saved time each boot."""
        if self.rtc_base is None:
            return "base=utc,clock=host"
        start = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.rtc_base))
        return f"base={start},clock=host"

    def start(self) -> None:
        """Powers the machine on (returns at once; see wait_for_login)."""
        if self.running():
            raise MachineError("the machine is already running")
        self.boots += 1
        with open(self.serial_log, "a") as log:
            log.write(f"\n---- power on {self.boots} ----\n")
        self.qemu = subprocess.Popen(self._qemu_argv(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.qemu_errors, "a"), start_new_session=True)

    def write_power_command(self, script: pathlib.Path) -> str:
        """A shell script switching this machine's power as a relay's command would (``on``: qemu
        daemonized on the same card, ``off``: SIGKILL of it), for a rig that knows the machine
        only as an SSH address and a power command; returns the command template. The machine
        must be off (:meth:`kill`) while the script owns it."""
        pidfile = self.work / "qemu.pid"
        argv = " ".join(shlex.quote(a) for a in self._qemu_argv())
        script.write_text(f"""#!/bin/sh
# The virtual Pi's power switch: on | off.
set -eu
pidfile={shlex.quote(str(pidfile))}
case "$1" in
on)
    printf '\\n---- power on (power command) ----\\n' >>{shlex.quote(str(self.serial_log))}
    exec {argv} -daemonize -pidfile "$pidfile" 2>>{shlex.quote(str(self.qemu_errors))} ;;
off)
    pid=$(cat "$pidfile" 2>/dev/null || true)
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || exit 0
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$pidfile" ;;
*)
    echo "usage: $0 on|off" >&2; exit 2 ;;
esac
""")
        script.chmod(0o755)
        return f"{shlex.quote(str(script))} {{state}}"

    def running(self) -> bool:
        return self.qemu is not None and self.qemu.poll() is None

    def kill(self) -> None:
        """The power cut: qemu and everything it started get SIGKILL at once."""
        if not self.running():
            raise MachineError("the machine is not running")
        stop_group(self.qemu, signal.SIGKILL)

    def power_off(self) -> None:
        """A clean shutdown from inside, else the process group is stopped."""
        if not self.running():
            return
        try:
            self.ssh("sudo systemctl poweroff", timeout=30, check=False)
            self.qemu.wait(timeout=60)
        except (subprocess.TimeoutExpired, MachineError):
            pass
        stop_group(self.qemu)

    # -- inside the machine: the device's shell over the forwarded SSH port ------------
    def failure_context(self) -> str:
        return f"serial log {self.serial_log}:\n{tail(self.serial_log)}"

    def ssh(self, command: str, timeout: float = 120, check: bool = True,
            text: bool = True) -> subprocess.CompletedProcess:
        if not self.running():
            code = self.qemu.returncode if self.qemu else None
            raise MachineError(f"qemu is not running (exit {code}): {tail(self.qemu_errors, 5)}\n"
                               f"{self.failure_context()}")
        return super().ssh(command, timeout, check, text)
