"""The emulated rig: the gateway as a process on this machine, with the emulated buses and GPIO.

* power: the gateway process; a power cut is SIGKILL (its state is lost at once; what the kernel
  had already been handed stays, so unflushed page cache is *not* lost here: the qemu rig and a
  real card are where that is tried);
* sensors and GPIO: the gateway's own emulated rig, driven through its rig-control socket
  (``GATEWAY_RIG_CONTROL``, ``gateway/hardware/emulated/control.py``);
* disk: as root, the data directory is on an ext4 file system of its own in a loop-mounted file
  (``card_mib``), so "the card is full" and "bytes written to the card" are real for that file
  system and its block device; without root there is no disk capability;
* clock: the gateway's emulated wall clock (``GATEWAY_EMULATED_CLOCK``, gateway/clock.py), which
  starts at the boot clock on every power on and is stepped through the rig-control socket; its
  monotonic clock and boot are this machine's, so a power cut here is a restart within one boot;
* status API: the gateway's HTTP server on a free loopback port (``GATEWAY_HTTP_LISTEN``);
* uplink: a VictoriaMetrics of the rig's own behind a fault proxy, both on free loopback ports
  (``hil/rigs/upstreams.py``); a cut resets the proxy's connections. The clock advance lets
  the gateway's emulated clock, and the replication timers that wait on it, move on at once;
* the LAN: a mosquitto of the rig's own on a free loopback port serves subscribers (as on the
  image), and LAN devices publish to the gateway's own endpoint on another free port, with a
  password made for the run.
"""

from __future__ import annotations

import json
import os
import secrets
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from gateway.clock import EMULATED_CLOCK_ENV
from hil.rigs.base import Rig, RigError, RigLacks
from hil.rigs.mosquitto import free_port

READY_TIMEOUT_S = 60
FILLER = "hil-filler"


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


class LoopCard:
    """An ext4 file system in a file, mounted on a loop device: the emulated SD card."""

    def __init__(self, image: pathlib.Path, mountpoint: pathlib.Path, size_mib: int) -> None:
        self.image, self.mountpoint = image, mountpoint
        with open(image, "wb") as f:
            f.truncate(size_mib * 1024 * 1024)
        _run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)])
        mountpoint.mkdir(parents=True, exist_ok=True)
        self.device = _run(["losetup", "--find", "--show", str(image)]).stdout.strip()
        try:
            # the image's options for its root (image/assemble.sh), so the card wears alike
            _run(["mount", "-o", "noatime,lazytime,commit=60", self.device, str(mountpoint)])
        except subprocess.CalledProcessError:
            _run(["losetup", "-d", self.device])
            raise

    def sectors_written(self) -> int:
        # /sys/block/<dev>/stat: the 7th field is sectors written (512 bytes each, whatever the
        # device's own sector size: the kernel's block layer counts in 512-byte units).
        name = os.path.basename(self.device)
        fields = pathlib.Path(f"/sys/block/{name}/stat").read_text().split()
        return int(fields[6])

    def free_bytes(self) -> int:
        st = os.statvfs(self.mountpoint)
        return st.f_bavail * st.f_frsize

    def close(self) -> None:
        subprocess.run(["umount", str(self.mountpoint)], capture_output=True)
        subprocess.run(["losetup", "-d", self.device], capture_output=True)
        self.image.unlink(missing_ok=True)


class EmulatedRig(Rig):
    kind = "emulated"
    advances_clock = True

    def __init__(self, workdir: pathlib.Path, card_mib: int = 0) -> None:
        self.workdir = pathlib.Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.card: LoopCard | None = None
        if card_mib:
            if os.geteuid() != 0:
                raise RigLacks(self.kind, "disk (a loop-mounted card needs root)")
            self.card = LoopCard(self.workdir / "card.img", self.workdir / "card", card_mib)
            self.data_dir = self.card.mountpoint / "gateway"
        else:
            self.data_dir = self.workdir / "data"
        self.config_path = self.workdir / "gateway.toml"
        self.rig_socket = self.workdir / "rig.sock"
        self.log_path = self.workdir / "gateway.log"
        self.proc: subprocess.Popen | None = None
        self.boots = 0
        self.broker = None
        self.uplink = None
        self._device_endpoint: tuple[int, str, str, pathlib.Path] | None = None
        self._boot_clock_s: float | None = None
        self.http_port = free_port()

    # -- the device under test ---------------------------------------------------------
    def boot(self, config_toml: str) -> None:
        self.config_path.write_text(config_toml)
        self.power_on()

    def _env(self) -> dict[str, str]:
        env = {**os.environ, "GATEWAY_HW": "emulated", "GATEWAY_RIG_CONTROL": str(self.rig_socket),
               "GATEWAY_HTTP_LISTEN": f"127.0.0.1:{self.http_port}", "PYTHONUNBUFFERED": "1"}
        env.pop(EMULATED_CLOCK_ENV, None)
        if self._boot_clock_s is not None:
            env[EMULATED_CLOCK_ENV] = f"{self._boot_clock_s:.3f}"
        return env

    def power_on(self) -> float:
        if self.proc is not None and self.proc.poll() is None:
            raise RigError("the gateway is already running")
        notify_path = self.workdir / "notify.sock"
        notify_path.unlink(missing_ok=True)
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(notify_path))
        t0 = time.monotonic()
        try:
            with open(self.log_path, "ab") as log:
                log.write(f"---- boot {self.boots + 1} ----\n".encode())
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "gateway", "run", "--config", str(self.config_path),
                     "--data-dir", str(self.data_dir)],
                    env={**self._env(), "NOTIFY_SOCKET": str(notify_path)},
                    stdout=log, stderr=log, cwd=self.workdir)
            deadline = t0 + READY_TIMEOUT_S
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise RigError(f"the gateway did not report ready within {READY_TIMEOUT_S} s "
                                   f"(exit {self.proc.poll()}); log: {self.log_path}\n{self.log_tail()}")
                notify.settimeout(min(left, 1.0))
                try:
                    message = notify.recv(4096).decode()
                except socket.timeout:
                    continue
                if "READY=1" in message.split("\n"):
                    break
        finally:
            notify.close()
            notify_path.unlink(missing_ok=True)
        self.boots += 1
        return time.monotonic() - t0

    def power_cut(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise RigError("the gateway is not running")
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def restart_gateway(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                raise RigError("the gateway did not stop within 30 s of SIGTERM") from None
            if rc != 0:
                raise RigError(f"the gateway exited with {rc} on SIGTERM; log: {self.log_path}")
        self.power_on()

    def gateway_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def gateway(self, *args: str, timeout: float = 120) -> tuple[int, bytes, str]:
        if not args:
            raise ValueError("which gateway command?")
        cmd = [sys.executable, "-m", "gateway", *args]
        if args[0] not in ("version",):
            cmd += ["--config", str(self.config_path), "--data-dir", str(self.data_dir)]
        p = subprocess.run(cmd, env=self._env(), capture_output=True, timeout=timeout,
                           cwd=self.workdir)
        return p.returncode, p.stdout, p.stderr.decode(errors="replace")

    def status(self, page: str = "overview") -> dict:
        url = f"http://127.0.0.1:{self.http_port}/api/status/{page}"
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                return json.loads(response.read())
        except (OSError, ValueError) as e:
            raise RigError(f"cannot read {url}: {e}") from e

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # -- the clock -----------------------------------------------------------------------
    def set_boot_clock(self, unix_s: float) -> None:
        self._boot_clock_s = unix_s

    def step_clock(self, unix_s: float | None = None) -> None:
        when_ns = time.time_ns() if unix_s is None else int(unix_s * 1e9)
        self._rig_request({"op": "clock", "step_to_ns": when_ns})

    def advance_clock(self, seconds: float) -> None:
        if self._boot_clock_s is None:
            raise RigError("advance_clock needs the emulated clock: set_boot_clock before boot")
        self._rig_request({"op": "clock", "advance_ns": int(seconds * 1e9)})

    # -- the uplink ----------------------------------------------------------------------
    def _uplink(self):
        from hil.rigs.upstreams import Uplink

        if self.uplink is None:
            self.uplink = Uplink(self.workdir / "upstream")
        return self.uplink

    def upstream_url(self) -> str:
        return f"http://127.0.0.1:{self._uplink().port}"

    # -- stimulus ----------------------------------------------------------------------
    def _rig_request(self, request: dict, timeout: float = 600) -> dict:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(self.rig_socket))
            s.sendall(json.dumps(request).encode() + b"\n")
            answer = b""
            while not answer.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                answer += chunk
        reply = json.loads(answer)
        if not reply.get("ok"):
            raise RigError(f"the emulated rig refused {request}: {reply.get('error')}")
        return reply

    def press(self, pin: int, count: int = 1, hold_ms: int = 60, gap_ms: int = 60) -> None:
        self._rig_request({"op": "press", "pin": pin, "count": count, "hold_ms": hold_ms,
                           "gap_ms": gap_ms, "active_low": True})

    def i2c_fault(self, bus: int, address: int, fault: str, count: int | None = None) -> None:
        request = {"op": "i2c", "bus": bus, "address": address, "fault": fault}
        if count is not None:
            request["count"] = count
        self._rig_request(request)

    # -- storage -----------------------------------------------------------------------
    def fill_disk(self, leave_bytes: int = 0) -> int:
        if self.card is None:
            raise RigLacks(self.kind, "disk (boot the rig with a card)")
        path = self.card.mountpoint / FILLER
        block = b"\xa5" * (1024 * 1024)
        written = 0
        with open(path, "ab") as f:
            while self.card.free_bytes() > leave_bytes:
                chunk = min(len(block), self.card.free_bytes() - leave_bytes)
                try:
                    f.write(block[:max(chunk, 4096)])
                    f.flush()
                except OSError:
                    break
                written += chunk
            try:
                os.fsync(f.fileno())
            except OSError:
                pass
        return written

    def free_disk(self) -> None:
        if self.card is None:
            raise RigLacks(self.kind, "disk")
        (self.card.mountpoint / FILLER).unlink(missing_ok=True)

    def block_device_bytes_written(self) -> int:
        if self.card is None:
            raise RigLacks(self.kind, "block device counters (boot the rig with a card)")
        return self.card.sectors_written() * 512

    def card_free_bytes(self) -> int:
        if self.card is None:
            raise RigLacks(self.kind, "disk")
        return self.card.free_bytes()

    # -- the LAN ------------------------------------------------------------------------
    def subscriber_broker_url(self) -> str:
        """The broker subscribers use (the gateway passes device messages on to it)."""
        from hil.rigs.mosquitto import Mosquitto

        if self.broker is None:
            self.broker = Mosquitto(self.workdir / "mosquitto")
            self.broker.start()
        return self.broker.url

    def _device_credentials(self) -> tuple[int, str, str, pathlib.Path]:
        from hil.rigs.mosquitto import free_port, password_file

        if self._device_endpoint is None:
            user, password = "device", secrets.token_urlsafe(16)
            path = password_file(self.workdir, {user: password})
            self._device_endpoint = (free_port(), user, password, path)
        return self._device_endpoint

    def device_listener(self) -> tuple[str, str]:
        port, _, _, path = self._device_credentials()
        return f"127.0.0.1:{port}", str(path)

    def mqtt_device_endpoint(self) -> tuple[str, int, str | None, str | None]:
        port, user, password, _ = self._device_credentials()
        return "127.0.0.1", port, user, password

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
        if self.uplink is not None:
            self.uplink.close()
            self.uplink = None
        if self.card is not None:
            self.card.close()
            self.card = None
