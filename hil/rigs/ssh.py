"""The ssh rig: a device running the image (a real Pi), reached over SSH, its power switched by a
command of this machine; and the device side every rig on the image shares (the qemu rig is an
ssh rig whose power switch is qemu).

* power: ``--power-command TEMPLATE``, a shell command run on this machine with ``{state}``
  replaced by ``on`` or ``off`` (a USB relay's or a smart plug's own tool); a power cut is
  ``off``, power on is ``on`` and then the wait until an SSH login works and ``gateway.service``
  is active again;
* commands and stored points: ``gateway ...`` over SSH as the service's user, with the service's
  data directory (``gateway export`` reads through the running daemon's control socket);
* GPIO stimulus: a second GPIO line wired back to the input (``--gpio-loopback IN:OUT``, BCM
  numbers, wiring in hil/README.md), driven from the device with lgpio, the library the gateway
  itself uses: a press pulls the input low through the output line;
* I2C faults: the emulated-sensor mode. A scenario whose configuration has ``hardware =
  "emulated"`` runs the gateway on the device with the emulated parts and their rig-control
  socket (``GATEWAY_RIG_CONTROL``, a systemd drop-in the rig installs and removes), and the
  faults are that socket's requests, sent from the device's side of the SSH session;
* disk: the data directory's file system filled (as root, a preallocated file beside the data)
  until what the gateway's user may still take is the headroom asked for; root keeps the file
  system's reserved blocks, so the device's own services and SSH go on. The file is removed when
  the disk is freed, when the rig closes and at the next boot (a run cut short leaves no full
  card behind). The bytes the card wrote are the kernel's counters of the whole card holding the
  data (``/sys/block/<card>/stat``, found from the data's mount: mmcblk0 on a Pi, vda on the
  virt machine), and the root file system's state is its own superblock's (``tune2fs -l``);
* status API: ``GET /api/status/<page>`` from the device's side of SSH, against the gateway's
  own HTTP listener;
* clock: the boot clock is what a Pi without a real-time clock boots with, the time fake-hwclock
  and timesyncd saved last: the rig writes both saves and cuts the power (the savers stopped
  first, so none writes the real time back; timesyncd masked while the rig runs, so it cannot
  reach an NTP server on the bench). A step is an NTP client's first one, made on the device:
  adjtimex sets the time, clears the kernel's unsynchronised flag and sets a maximum error of
  0, as timesyncd does (``date -s`` leaves the flag set);
* the LAN: the gateway's device endpoint on the device's port 1883, with the first-boot
  password; subscribers on the image's mosquitto at the device's 127.0.0.1:1885;
* uplink: a VictoriaMetrics on this machine where the device reaches it (``--upstream-listen
  HOST:PORT``, an address of the bench machine; ``--upstream-url`` when the device reaches it
  by another address), cut by iptables rules on the device (``hil/rigs/device_uplink.py``).
"""

from __future__ import annotations

import json
import pathlib
import re
import shlex
import subprocess
import time
import tomllib
import urllib.parse

from hil.rigs.base import CardWindow, Rig, RigError, RigLacks
from hil.rigs.device_uplink import DeviceUplink, device_target

GATEWAY_TOML = "/etc/gateway/gateway.toml"
ACTIVE_TOML = "/run/gateway/gateway.toml"   # what select-config chose for this start
DATA_DIR = "/var/lib/gateway"
DEVICE_PORT = 1883
SERVICE_TIMEOUT_S = 5 * 60
LOGIN_TIMEOUT_S = 10 * 60
#: The LAN credentials the image makes on first boot (edge-gateway-mqtt-credentials.service).
LAN_CREDENTIALS = "/etc/mosquitto/lan-credentials"
#: The gateway's HTTP listener when its configuration does not name one (the unit's
#: GATEWAY_HTTP_LISTEN on the image).
HTTP_PORT = 80
#: What a Pi boots with when it has no real-time clock: the later of these two saves (never
#: earlier than systemd's own build time, to which systemd advances an older clock).
FAKE_HWCLOCK_SAVE = "/etc/fake-hwclock.data"
TIMESYNCD_CLOCK = "/var/lib/systemd/timesync/clock"
#: The emulated-sensor mode: the gateway serves its rig-control socket here.
RIG_CONTROL_DROP_IN = "/etc/systemd/system/gateway.service.d/hil-rig-control.conf"
RIG_CONTROL_SOCKET = "/run/gateway/rig.sock"
#: The disk capability's filler, at the top of the data's file system.
FILLER_NAME = "hil-disk-filler"
SSH_CONNECT_ATTEMPTS = 12      # a minute of resets while sshd restarts
_SSH_TRANSPORT_ERROR = re.compile(r"kex_exchange_identification|Connection (reset|refused|closed)")

# Run on the device by the service's Python: one rig-control request from stdin, its answer out.
_RIG_REQUEST = """
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(600)
s.connect(sys.argv[1])
s.sendall(sys.stdin.buffer.read())
sys.stdout.buffer.write(s.makefile("rb").readline())
"""

# Run on the device by the service's user: one status API page, printed as it came.
_STATUS_GET = """
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=60) as response:
    sys.stdout.buffer.write(response.read())
"""

# Run on the device as root: a step of the wall clock as an NTP client's first step (timesyncd's:
# adjtimex with ADJ_SETOFFSET, the status cleared of STA_UNSYNC, maximum and estimated error 0).
# The target time is read once the interpreter is up, so the step lands within the SSH link's
# latency of the rig's clock, not a Python start later.
_CLOCK_STEP = """
import ctypes, json, sys, time
L, I = ctypes.c_long, ctypes.c_int
class Timex(ctypes.Structure):  # struct timex, linux/timex.h
    _fields_ = [("modes", ctypes.c_uint), ("offset", L), ("freq", L), ("maxerror", L),
                ("esterror", L), ("status", I), ("constant", L), ("precision", L),
                ("tolerance", L), ("tv_sec", L), ("tv_usec", L), ("tick", L), ("ppsfreq", L),
                ("jitter", L), ("shift", I), ("stabil", L), ("jitcnt", L), ("calcnt", L),
                ("errcnt", L), ("stbcnt", L), ("tai", I), ("reserved", I * 11)]
ADJ_MAXERROR, ADJ_ESTERROR, ADJ_STATUS, ADJ_SETOFFSET, ADJ_NANO = 0x4, 0x8, 0x10, 0x100, 0x2000
libc = ctypes.CDLL(None, use_errno=True)
print("ready", flush=True)
target = int(sys.stdin.readline())
seconds, nanoseconds = divmod(target - time.time_ns(), 10**9)
tx = Timex(modes=ADJ_SETOFFSET | ADJ_NANO | ADJ_STATUS | ADJ_MAXERROR | ADJ_ESTERROR,
           tv_sec=seconds, tv_usec=nanoseconds)
state = libc.adjtimex(ctypes.byref(tx))
print(json.dumps({"state": state, "errno": ctypes.get_errno(),
                  "step_ns": seconds * 10**9 + nanoseconds}))
"""
# Run on the device as root: fills the data's file system until its users may take no more than
# the headroom (statvfs' f_bavail, what the gateway's user sees free; root keeps the reserved
# blocks). Preallocated, not written: the card is not worn by the filling. A few rounds, as the
# filler's own extent tree takes some of what was free.
_FILL = """
import json, os, sys
data, leave, filler = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def free():
    st = os.statvfs(data)
    return st.f_bavail * st.f_frsize
fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
try:
    size = os.fstat(fd).st_size
    for _ in range(8):
        more = free() - leave
        if more <= 0:
            break
        os.posix_fallocate(fd, size, more)
        size += more
    os.fsync(fd)
finally:
    os.close(fd)
print(json.dumps({"bytes": size, "free": free()}))
"""

# Run on the device (the start of the two scripts below): the whole card holding the data (not
# its partition: the card wears by everything written to it), found from the data's mount, and
# the bytes written to it, from the kernel's counters.
_CARD = """
import json, os, sys, time
dev = os.stat(sys.argv[1]).st_dev
node = os.path.realpath(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}")
part = os.path.basename(node)
disk = os.path.dirname(node) if os.path.exists(os.path.join(node, "partition")) else node

def card_bytes_written():
    with open(os.path.join(disk, "stat")) as f:
        return int(f.read().split()[6]) * 512   # sectors written, 512 bytes whatever the card's own
"""

_CARD_WRITTEN = _CARD + """
print(json.dumps({"bytes": card_bytes_written()}))
"""

# Run on the device as root: the card's writes over a window, with the processes that wrote
# and the data file system's journal commits. The window opens after a sync, so the writes this
# login caused (sshd's and sudo's log lines, the session's files) are on the card before it; the
# logout comes after it closes.
_CARD_WINDOW = _CARD + """
def sample():
    written = card_bytes_written()
    writers = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{pid}/io") as f:
                io = dict(line.split(": ") for line in f.read().splitlines())
        except OSError:
            continue   # ended meanwhile
        key = (pid, comm.split("/")[0] if comm.startswith("kworker") else comm)
        writers[key] = int(io["write_bytes"])
    try:
        with open(f"/proc/fs/jbd2/{part}-8/info") as f:
            commits = int(f.readline().split()[0])
    except FileNotFoundError:
        commits = None
    return written, writers, commits

os.sync()
written0, writers0, commits0 = sample()
started = time.monotonic()
time.sleep(float(sys.argv[2]))
written, writers, commits = sample()
by_name = {}
for (pid, name), n in writers.items():
    by_name[name] = by_name.get(name, 0) + n - writers0.get((pid, name), 0)
print(json.dumps({"bytes": written - written0, "seconds": time.monotonic() - started,
                  "writers": {k: v for k, v in by_name.items() if v > 0},
                  "commits": None if commits is None else commits - commits0}))
"""

#: adjtimex's answer while the kernel considers the clock unsynchronised.
TIME_ERROR = 5

# Run on the device: presses on the output line wired back to an input (active low).
_GPIO_PRESS = """
import sys, time, lgpio
line, count, hold, gap = (int(a) for a in sys.argv[1:])
h = lgpio.gpiochip_open(0)
lgpio.gpio_claim_output(h, line, 1)
try:
    for _ in range(count):
        lgpio.gpio_write(h, line, 0); time.sleep(hold / 1000)
        lgpio.gpio_write(h, line, 1); time.sleep(gap / 1000)
finally:
    lgpio.gpio_free(h, line)
    lgpio.gpiochip_close(h)
"""


class Shell:
    """Commands on a device over SSH (OpenSSH's client: the user's keys, agent and config apply
    unless a key is given)."""

    #: What a failure raises (the qemu machine raises its own kind).
    error: type[RigError] = RigError

    def __init__(self, user: str, host: str, port: int = 22, key: pathlib.Path | None = None) -> None:
        self.user, self.host, self.port, self.key = user, host, port, key

    def failure_context(self) -> str:
        """More evidence for a failure message (a console log, when there is one)."""
        return ""

    def ssh_argv(self, command: str) -> list[str]:
        argv = ["ssh", "-p", str(self.port), "-o", "BatchMode=yes", "-o", "ConnectTimeout=20",
                "-o", "LogLevel=ERROR", "-o", "ServerAliveInterval=15"]
        if self.key is not None:
            # A device made for the run (a fresh host key on every first boot).
            argv += ["-i", str(self.key), "-o", "StrictHostKeyChecking=no",
                     "-o", "UserKnownHostsFile=/dev/null"]
        return argv + [f"{self.user}@{self.host}", command]

    def ssh(self, command: str, timeout: float = 120, check: bool = True,
            text: bool = True) -> subprocess.CompletedProcess:
        argv = self.ssh_argv(command)
        # sshd is restarted during first boot (cloud-init's ssh and password modules), so a
        # connection can be reset before the session starts; that is retried, a command's own
        # failure is not.
        for _ in range(SSH_CONNECT_ATTEMPTS):
            proc = subprocess.run(argv, capture_output=True, text=text, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
            stderr = proc.stderr if text else proc.stderr.decode(errors="replace")
            if proc.returncode != 255 or not _SSH_TRANSPORT_ERROR.search(stderr):
                break
            time.sleep(5)
        if check and proc.returncode != 0:
            stdout = proc.stdout if text else proc.stdout.decode(errors="replace")
            raise self.error(f"over SSH `{command}` exited {proc.returncode}:\n{stdout}{stderr}")
        return proc

    def wait_for_login(self, timeout: float) -> float:
        """Seconds until an SSH login worked."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            try:
                if self.ssh("true", timeout=60, check=False).returncode == 0:
                    return time.monotonic() - started
            except subprocess.TimeoutExpired:
                pass
            time.sleep(2)
        raise self.error(f"no SSH login to {self.host}:{self.port} within {timeout // 60:.0f} min\n"
                         f"{self.failure_context()}")

    def wait_until_active(self, unit: str, timeout: float = SERVICE_TIMEOUT_S) -> None:
        """Polls the unit until it is active, or fails with its status and journal."""
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.ssh(f"systemctl is-active {unit}", check=False).stdout.strip()
            if state == "active":
                return
            if state == "failed":
                break
            time.sleep(1)
        status = self.ssh(f"systemctl status --no-pager {unit}; sudo journalctl --no-pager -n 60 -u {unit}",
                          check=False)
        raise self.error(f"{unit} is {state!r}, not active:\n{status.stdout}{status.stderr}")

    def write_root_file(self, path: str, content: str, mode: str = "0600") -> None:
        self.ssh(f"sudo install -D -m {mode} /dev/stdin {shlex.quote(path)} <<'EOF'\n{content}EOF\n")

    def lan_credentials(self) -> tuple[str, str]:
        """(username, password) LAN devices connect with, as made on first boot."""
        text = self.ssh(f"sudo cat {LAN_CREDENTIALS}").stdout
        return (re.search(r"^username: (\S+)$", text, re.M).group(1),
                re.search(r"^password: (\S+)$", text, re.M).group(1))


class CommandPower:
    """A power switch driven by a command of this machine: ``template`` with ``{state}``."""

    def __init__(self, template: str) -> None:
        if "{state}" not in template:
            raise RigError(f"the power command must contain {{state}} (on/off): {template!r}")
        self.template = template

    def _switch(self, state: str) -> None:
        command = self.template.replace("{state}", state)
        proc = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise RigError(f"the power command `{command}` exited {proc.returncode}:\n"
                           f"{proc.stdout}{proc.stderr}")

    def cut(self) -> None:
        self._switch("off")

    def restore(self) -> None:
        self._switch("on")


def parse_target(spec: str) -> tuple[str, str, int]:
    """``ssh://user@host[:port]`` -> (user, host, port)."""
    url = urllib.parse.urlsplit(spec)
    if url.scheme != "ssh" or not url.hostname or not url.username or url.path not in ("", "/"):
        raise RigError(f"--rig ssh://user@host[:port] expected, got {spec!r}")
    return url.username, url.hostname, url.port or 22


def parse_endpoint(text: str | None, option: str = "--lan-endpoint") -> tuple[str, int] | None:
    """``HOST:PORT`` (the value of ``option``) -> (host, port)."""
    if not text:
        return None
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise RigError(f"{option} takes HOST:PORT, got {text!r}")
    return host, int(port)


def parse_gpio_loopback(text: str | None) -> dict[int, int]:
    """``IN:OUT[,IN:OUT...]`` (BCM numbers) -> {input: output}."""
    wiring: dict[int, int] = {}
    for pair in (text or "").split(","):
        if not pair.strip():
            continue
        try:
            inp, out = (int(n) for n in pair.split(":"))
        except ValueError:
            raise RigError(f"--gpio-loopback takes IN:OUT pairs of GPIO numbers, got {pair!r}") from None
        wiring[inp] = out
    return wiring


class SshRig(Rig):
    kind = "ssh"
    #: Whether the device may reach an NTP server (a bench LAN): timesyncd is then masked while
    #: the rig needs the clock unsynchronised.
    ntp_reachable = True

    def __init__(self, workdir: pathlib.Path, shell: Shell | None, power,
                 lan_endpoint: tuple[str, int] | None = None,
                 gpio_loopback: dict[int, int] | None = None,
                 upstream_listen: tuple[str, int] | None = None, upstream_url: str | None = None) -> None:
        self.workdir = pathlib.Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.shell, self.power = shell, power
        self._lan_endpoint = lan_endpoint
        self.gpio_loopback = gpio_loopback or {}
        self._rig_control = False
        self._http_port = HTTP_PORT
        #: The boot clock to power on with (Unix seconds), until it has been applied.
        self._boot_clock_s: float | None = None
        self._ntp_masked = False
        #: Where the upstream listens on this machine, and its URL as the device uses it.
        self.upstream_listen, self._upstream_device_url = upstream_listen, upstream_url
        if upstream_url:
            device_target(upstream_url)   # a bad option fails here, not half-way through a run
        self.uplink: DeviceUplink | None = None
        #: The disk filler's path on the device, while the rig may have left one there.
        self._filler: str | None = None

    def _shell(self) -> Shell:
        if self.shell is None:
            raise RigError(f"the {self.kind} rig has not booted yet")
        return self.shell

    # -- the device under test ---------------------------------------------------------
    def boot(self, config_toml: str) -> None:
        sh = self._shell()
        sh.wait_for_login(LOGIN_TIMEOUT_S)
        self._remove_filler()   # a run cut short may have left the card full
        emulated = tomllib.loads(config_toml).get("gateway", {}).get("hardware") == "emulated"
        self._set_rig_control(emulated)
        sh.write_root_file(GATEWAY_TOML, config_toml)
        if self._boot_clock_s is not None:
            # The gateway starts on the boot clock with this configuration: none other stores
            # readings at that time first.
            self._power_cycle_to_boot_clock()
        else:
            sh.ssh("sudo systemctl restart gateway.service", timeout=SERVICE_TIMEOUT_S)
            sh.wait_until_active("gateway.service")
        active = sh.ssh(f"sudo cat {ACTIVE_TOML}").stdout
        if active != config_toml:
            errors = sh.ssh("sudo cat /run/gateway/config-errors", check=False).stdout
            raise RigError(f"the gateway rejected the scenario's configuration:\n{errors}")
        listen = tomllib.loads(active).get("http", {}).get("listen")
        self._http_port = int(listen.rpartition(":")[2]) if listen else HTTP_PORT

    def _set_rig_control(self, on: bool) -> None:
        """The emulated-sensor mode's rig-control socket: a drop-in for the gateway's unit."""
        sh = self._shell()
        if on:
            sh.write_root_file(RIG_CONTROL_DROP_IN,
                               f"[Service]\nEnvironment=GATEWAY_RIG_CONTROL={RIG_CONTROL_SOCKET}\n", "0644")
        else:
            sh.ssh(f"sudo rm -f {RIG_CONTROL_DROP_IN}")
        sh.ssh("sudo systemctl daemon-reload")
        self._rig_control = on

    def _power_cycle_to_boot_clock(self) -> None:
        """Saves the boot clock where fake-hwclock and timesyncd restore the time from at power
        on, and cuts the power: the savers are stopped first (fake-hwclock saves the real time
        on its way down), and a cut leaves no shutdown to save it again."""
        sh = self._shell()
        unix_s = int(self._boot_clock_s)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(unix_s))
        timesyncd = "mask --now" if self.ntp_reachable else "stop"
        sh.ssh(f"sudo systemctl stop fake-hwclock-save.timer fake-hwclock.service"
               f" && sudo systemctl {timesyncd} systemd-timesyncd.service"
               f" && echo '{stamp}' | sudo tee {FAKE_HWCLOCK_SAVE} >/dev/null"
               f" && sudo sh -c 'test ! -e {TIMESYNCD_CLOCK} || touch -d @{unix_s} {TIMESYNCD_CLOCK}'"
               f" && sync")
        self._ntp_masked = self.ntp_reachable
        self.power_cut()
        self.power_on()
        self._boot_clock_s = None

    def power_cut(self) -> None:
        self.power.cut()

    def power_on(self) -> float:
        sh = self._shell()
        started = time.monotonic()
        self.power.restore()
        sh.wait_for_login(LOGIN_TIMEOUT_S)
        if self.uplink is not None and self.uplink.cut:
            # The cut's rules did not survive the reboot; the uplink is still down. (The gateway
            # may have started before they are back: the window is the login's time.)
            self.uplink.apply(sh)
        sh.wait_until_active("gateway.service")
        return time.monotonic() - started

    def restart_gateway(self) -> None:
        sh = self._shell()
        sh.ssh("sudo systemctl restart gateway.service", timeout=SERVICE_TIMEOUT_S)
        sh.wait_until_active("gateway.service")

    def gateway_running(self) -> bool:
        try:
            state = self._shell().ssh("systemctl is-active gateway.service", timeout=60, check=False)
        except (RigError, subprocess.TimeoutExpired):
            return False
        return state.stdout.strip() == "active"

    def gateway(self, *args: str, timeout: float = 120) -> tuple[int, bytes, str]:
        if not args:
            raise ValueError("which gateway command?")
        words = list(args) + (["--data-dir", DATA_DIR] if args[0] != "version" else [])
        # From /: the gateway user may not read the login's home directory.
        command = "cd / && sudo -u gateway gateway " + " ".join(shlex.quote(w) for w in words)
        p = self._shell().ssh(command, timeout=timeout, check=False, text=False)
        return p.returncode, p.stdout, p.stderr.decode(errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        if self.shell is None:
            return ""
        try:
            return self.shell.ssh(f"sudo journalctl --no-pager -b -n {lines} -u gateway.service",
                                  check=False, timeout=60).stdout
        except Exception as e:  # the log is evidence for a failure already being reported
            return f"(journal not readable: {e})"

    def status(self, page: str = "overview") -> dict:
        url = f"http://127.0.0.1:{self._http_port}/api/status/{page}"
        answer = self._device_python(_STATUS_GET, url)
        try:
            return json.loads(answer)
        except ValueError as e:
            raise RigError(f"the device's {url} is not JSON ({e}): {answer[:200]!r}") from None

    # -- the clock -----------------------------------------------------------------------
    def set_boot_clock(self, unix_s: float) -> None:
        """Applied at the next :meth:`boot`: a power cycle into the saved time (see the module)."""
        self._boot_clock_s = unix_s

    def step_clock(self, unix_s: float | None = None) -> float:
        command = f"cd / && sudo /opt/edge-gateway/bin/python -c {shlex.quote(_CLOCK_STEP)}"
        proc = subprocess.Popen(self._shell().ssh_argv(command), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            if proc.stdout.readline().strip() == "ready":
                target_ns = time.time_ns() if unix_s is None else int(unix_s * 1e9)
                proc.stdin.write(f"{target_ns}\n")
                proc.stdin.flush()
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        try:
            answer = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise RigError(f"the clock step on the device failed (exit {proc.returncode}):\n{out}{err}") from None
        if answer["state"] < 0 or answer["state"] == TIME_ERROR:
            raise RigError(f"the device's kernel did not take the clock step: {answer}")
        return answer["step_ns"] / 1e9

    # -- the uplink ----------------------------------------------------------------------
    def _uplink(self) -> DeviceUplink:
        if self.upstream_listen is None:
            raise RigLacks(self.kind, "upstream (no --upstream-listen HOST:PORT the device reaches)")
        if self.uplink is None:
            self.uplink = DeviceUplink(self.workdir / "upstream", self.upstream_listen,
                                       self._upstream_device_url)
        return self.uplink

    def upstream_url(self) -> str:
        return self._uplink().device_url

    def uplink_cut(self) -> None:
        self._uplink().set_cut(self._shell(), True)

    def uplink_restore(self) -> None:
        self._uplink().set_cut(self._shell(), False)

    def _close_uplink(self, device_up: bool) -> None:
        """Stops the upstream; the cut's rules are removed from a device still running."""
        if self.uplink is None:
            return
        try:
            if device_up and self.shell is not None:
                self.uplink.set_cut(self.shell, False)
        finally:
            self.uplink.close()
            self.uplink = None

    # -- stimulus ----------------------------------------------------------------------
    def _device_python(self, script: str, *args: str, stdin: str = "", user: str = "gateway",
                       timeout: float = 600) -> str:
        command = (f"cd / && sudo -u {user} /opt/edge-gateway/bin/python -c {shlex.quote(script)} "
                   + " ".join(shlex.quote(a) for a in args))
        if stdin:
            command += f" <<'EOF'\n{stdin}\nEOF\n"
        return self._shell().ssh(command, timeout=timeout).stdout

    def _rig_request(self, request: dict) -> dict:
        if not self._rig_control:
            raise RigLacks(self.kind, "i2c faults (the configuration's hardware is real: no emulated parts)")
        answer = self._device_python(_RIG_REQUEST, RIG_CONTROL_SOCKET, stdin=json.dumps(request))
        reply = json.loads(answer)
        if not reply.get("ok"):
            raise RigError(f"the device's emulated rig refused {request}: {reply.get('error')}")
        return reply

    def press(self, pin: int, count: int = 1, hold_ms: int = 60, gap_ms: int = 60) -> None:
        if self._rig_control:  # the emulated-sensor mode: the gateway's mock pins
            self._rig_request({"op": "press", "pin": pin, "count": count, "hold_ms": hold_ms,
                               "gap_ms": gap_ms, "active_low": True})
            return
        if pin not in self.gpio_loopback:
            raise RigLacks(self.kind, f"gpio stimulus on GPIO{pin} (no --gpio-loopback {pin}:OUT wired)")
        # The gpio group may use the chip; root is not needed.
        self._device_python(_GPIO_PRESS, str(self.gpio_loopback[pin]), str(count), str(hold_ms),
                            str(gap_ms), timeout=60 + count * (hold_ms + gap_ms) / 1000)

    def i2c_fault(self, bus: int, address: int, fault: str, count: int | None = None) -> None:
        request = {"op": "i2c", "bus": bus, "address": address, "fault": fault}
        if count is not None:
            request["count"] = count
        self._rig_request(request)

    # -- storage -----------------------------------------------------------------------
    def _filler_path(self) -> str:
        if self._filler is None:
            top = self._shell().ssh(f"findmnt -no TARGET -T {DATA_DIR}").stdout.strip()
            self._filler = f"{top.rstrip('/')}/{FILLER_NAME}"
        return self._filler

    def fill_disk(self, leave_bytes: int = 0) -> int:
        answer = json.loads(self._device_python(_FILL, DATA_DIR, str(int(leave_bytes)),
                                                self._filler_path(), user="root"))
        return answer["bytes"]

    def free_disk(self) -> None:
        self._remove_filler()

    def _remove_filler(self) -> None:
        self._shell().ssh(f"sudo rm -f {shlex.quote(self._filler_path())}")

    def block_device_bytes_written(self) -> int:
        return json.loads(self._device_python(_CARD_WRITTEN, DATA_DIR, user="root"))["bytes"]

    def card_writes_during(self, seconds: float) -> CardWindow:
        answer = json.loads(self._device_python(_CARD_WINDOW, DATA_DIR, str(seconds), user="root",
                                                timeout=seconds + 120))
        return CardWindow(answer["bytes"], answer["seconds"], answer["writers"], answer["commits"])

    def filesystem_state(self) -> str:
        sh = self._shell()
        device = sh.ssh("findmnt -no SOURCE /").stdout.strip()
        superblock = sh.ssh(f"sudo tune2fs -l {shlex.quote(device)}").stdout
        fields = dict(line.split(":", 1) for line in superblock.splitlines() if ":" in line)
        state = fields.get("Filesystem state", "").strip()
        errors = fields.get("FS Error count", "0").strip()
        return state if errors == "0" else f"{state}, {errors} errors recorded"

    # -- the LAN ------------------------------------------------------------------------
    def device_listener(self) -> tuple[str, str]:
        return f"0.0.0.0:{DEVICE_PORT}", "/etc/gateway/lan.passwd"

    def subscriber_broker_url(self) -> str:
        return "mqtt://127.0.0.1:1885"

    def lan_endpoint(self) -> tuple[str, int]:
        """Where a LAN device reaches the gateway's endpoint from this machine (by default the
        device's address, port 1883)."""
        return self._lan_endpoint or (self._shell().host, DEVICE_PORT)

    def mqtt_device_endpoint(self) -> tuple[str, int, str | None, str | None]:
        user, password = self._shell().lan_credentials()
        return (*self.lan_endpoint(), user, password)

    def close(self) -> None:
        """Leaves the device powered and running its gateway, without the rig's drop-in, its
        NTP client back, its uplink uncut."""
        try:
            self._close_uplink(device_up=True)
        except (RigError, subprocess.TimeoutExpired):
            pass   # a device that cannot be reached keeps no rules past its next boot
        if self.shell is None:
            return
        try:
            self._remove_filler()
        except (RigError, subprocess.TimeoutExpired):
            pass   # the device is off: the next boot removes it
        try:
            if self._rig_control and self.gateway_running():
                self._set_rig_control(False)
            if self._ntp_masked:
                self.shell.ssh("sudo systemctl unmask systemd-timesyncd.service"
                               " && sudo systemctl start systemd-timesyncd.service")
                self._ntp_masked = False
        except RigError:
            pass
