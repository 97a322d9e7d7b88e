"""What the gateway process writes to the card under scenario 7's load, by file and by cause.

Runs the real gateway on the HIL emulated rig (``hil/rigs/emulated.py``): its data directory on
a loop-mounted ext4 of its own (mounted as the image mounts its root), the emulated I2C parts
and host metrics at 1 Hz, and 20 LAN devices publishing three fields every 10 s over MQTT QoS 1
(the load of ``hil/scenarios/test_write_budget.py``, reused from there). After a warm-up it
attaches ``strace`` to the gateway for the measured window and counts, per file of the data
directory: write calls and their bytes, the pages they dirtied (a page counts once until the
file is synced or the kernel writes it back, which is what ``write_bytes`` in ``/proc/<pid>/io``
counts), fsync/fdatasync calls and those that found nothing written since the file's last sync,
and the file-system changes the ext4 journal records (files created, renamed, removed,
truncated). All scaled to a day. Beside it: the process's own ``write_bytes`` and the card's
block-device counters over the same window.

    sudo .venv/bin/python benchmarks/card_writes.py [--minutes 3] [--warmup 30]

Needs root (the loop mount) and strace (deps/debian-bench.txt, which `make bench` installs as
root; without either it says it did not measure and exits 0, so that `make bench` goes on).
strace slows each traced call a little; the load is light (about 125 points a second), so the
gateway keeps up. The pages of the per-file table are
a model of the kernel's accounting (a page written back 30 s after it was dirtied counts again
when it is written once more); the process line is the kernel's own figure.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PAGE = 4096
#: The kernel writes a dirty page back this long after it was dirtied (dirty_expire_centisecs).
WRITEBACK_S = 30.0
MIB = 2**20
TRACED = ("write,pwrite64,writev,pwritev,pwritev2,fsync,fdatasync,ftruncate,fallocate,"
          "openat,rename,renameat,renameat2,unlink,unlinkat,mkdir")


@dataclasses.dataclass
class FileFigures:
    writes: int = 0
    bytes: int = 0
    pages: int = 0
    syncs: int = 0
    empty_syncs: int = 0
    metadata: int = 0     # created, renamed, removed, truncated, preallocated


class PageModel:
    """Pages dirtied per file (by path): a page counts when it goes from clean to dirty; a sync
    of the file cleans its pages, the kernel's writeback cleans a page WRITEBACK_S after it
    was dirtied."""

    def __init__(self) -> None:
        self.dirty: dict[str, dict[int, float]] = collections.defaultdict(dict)

    def write(self, path: str, offset: int, length: int, now: float) -> int:
        pages = self.dirty[path]
        new = 0
        for page in range(offset // PAGE, (offset + max(length, 1) - 1) // PAGE + 1):
            since = pages.get(page)
            if since is None or now - since >= WRITEBACK_S:
                pages[page] = now
                new += 1
        return new

    def sync(self, path: str, now: float) -> bool:
        """Cleans the file's pages; True when any was dirty (the sync wrote something)."""
        pages = self.dirty.pop(path, {})
        return any(now - since < WRITEBACK_S for since in pages.values())

    def forget(self, path: str) -> None:
        self.dirty.pop(path, None)

    def rename(self, old: str, new: str) -> None:
        self.dirty[new] = self.dirty.pop(old, {})

    def entry_changed(self, path: str, now: float) -> None:
        """A name in path's directory was made, renamed or removed: the directory's sync
        has that to write."""
        self.dirty[os.path.dirname(path)][0] = now


LINE = re.compile(r"^(\d+)\s+(\d+\.\d+)\s+(\w+)\((.*)\)\s+=\s+(-?\d+|\?)(?:<([^>]*)>)?")
FD_PATH = re.compile(r"^\d+<([^>]*)>")


def joined_lines(text: str):
    """strace -f lines with each call's unfinished and resumed halves put back together."""
    pending: dict[str, str] = {}
    for line in text.splitlines():
        pid = line.split(" ", 1)[0]
        if line.endswith("<unfinished ...>"):
            pending[pid] = line[: -len("<unfinished ...>")].rstrip()
            continue
        m = re.match(r"^(\d+\s+\d+\.\d+)\s+<\.\.\. \w+ resumed>\s?(.*)$", line)
        if m:
            start = pending.pop(pid, None)
            if start is not None:
                yield start + m.group(2)
            continue
        yield line


def split_args(args: str) -> list[str]:
    """Top-level comma-separated arguments of a call as strace prints it."""
    out, depth, quoted, cur = [], 0, False, []
    i = 0
    while i < len(args):
        c = args[i]
        if quoted:
            if c == "\\":
                cur.append(args[i:i + 2])
                i += 2
                continue
            if c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c in "[{(<":
            depth += 1
        elif c in "]})>":
            depth -= 1
        elif c == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            i += 1
            continue
        cur.append(c)
        i += 1
    if cur:
        out.append("".join(cur).strip())
    return out


def unquote(arg: str) -> str:
    return arg[1:-1] if arg.startswith('"') and arg.endswith('"') else arg


def per_file(trace: str, data_dir: str) -> dict[str, FileFigures]:
    """The trace's calls on files under data_dir, by file kind (see :func:`file_kind`)."""
    figures: dict[str, FileFigures] = collections.defaultdict(FileFigures)
    model = PageModel()
    positions: dict[tuple[str, str], int] = {}   # (pid, fd) -> file position of write()
    prefix = data_dir.rstrip("/") + "/"

    def under(path: str | None) -> bool:
        return path is not None and path.startswith(prefix)

    for line in joined_lines(trace):
        m = LINE.match(line)
        if not m:
            continue
        pid, now, call, args, result, result_path = m.groups()
        now = float(now)
        if result == "?" or result.startswith("-"):
            continue
        argv = split_args(args)
        fd_m = FD_PATH.match(argv[0]) if argv else None
        path = fd_m.group(1) if fd_m else None
        if call == "openat":
            if under(result_path):
                positions[(pid, result)] = 0
                if "O_TRUNC" in args or ("O_CREAT" in args and "O_EXCL" in args):
                    model.forget(result_path)
                    model.entry_changed(result_path, now)
                    figures[file_kind(result_path, data_dir)].metadata += 1
            continue
        if call in ("rename", "renameat", "renameat2"):
            names = [unquote(a) for a in argv if a.startswith('"')]
            dirs = [FD_PATH.match(a) for a in argv if FD_PATH.match(a)]
            if len(names) == 2:
                base = dirs[0].group(1) + "/" if dirs else ""
                old, new = (n if n.startswith("/") else base + n for n in names)
                if under(new):
                    model.rename(old, new)
                    model.entry_changed(new, now)
                    figures[file_kind(new, data_dir)].metadata += 1
            continue
        if call in ("unlink", "unlinkat"):
            names = [unquote(a) for a in argv if a.startswith('"')]
            dirs = [FD_PATH.match(a) for a in argv if FD_PATH.match(a)]
            if names:
                base = dirs[0].group(1) + "/" if dirs else ""
                gone = names[0] if names[0].startswith("/") else base + names[0]
                if under(gone):
                    model.forget(gone)
                    model.entry_changed(gone, now)
                    figures[file_kind(gone, data_dir)].metadata += 1
            continue
        if call == "mkdir":
            continue
        if not under(path):
            continue
        f = figures[file_kind(path, data_dir)]
        fd = argv[0].split("<", 1)[0]
        if call in ("fsync", "fdatasync"):
            f.syncs += 1
            if not model.sync(path, now):
                f.empty_syncs += 1
        elif call in ("ftruncate", "fallocate"):
            f.metadata += 1
        elif call in ("write", "writev"):
            n = int(result)
            offset = positions.get((pid, fd), 0)
            f.writes += 1
            f.bytes += n
            f.pages += model.write(path, offset, n, now)
            positions[(pid, fd)] = offset + n
        elif call in ("pwrite64", "pwritev", "pwritev2"):
            n = int(result)
            offset = int(argv[-1]) if call == "pwrite64" else int(argv[3] if len(argv) > 3 else 0)
            f.writes += 1
            f.bytes += n
            f.pages += model.write(path, offset, n, now)
    return figures


def file_kind(path: str, data_dir: str) -> str:
    """A file's place in the data directory, WAL segments and temporary names folded."""
    rel = os.path.relpath(path, data_dir)
    rel = re.sub(r"/wal/[^/]+\.wal$", "/wal/*.wal", rel)
    rel = re.sub(r"\.tmp[^/]*$", "", rel)
    return rel


def io_write_bytes(pid: int) -> int:
    for line in pathlib.Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise RuntimeError(f"no write_bytes in /proc/{pid}/io")


def run(minutes: float, warmup: float, workdir: pathlib.Path) -> None:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    from hil.rigs.emulated import EmulatedRig
    from hil.scenarios.test_power_cut_mqtt import config as lan_ingest_config
    from hil.scenarios.test_write_budget import LAN_PERIOD_S, LOCAL_SENSORS, publish_round

    rig = EmulatedRig(workdir, card_mib=64)
    strace = None
    device = None
    try:
        rig.boot(lan_ingest_config(rig.subscriber_broker_url(), *rig.device_listener())
                 + LOCAL_SENSORS)
        pid = rig.proc.pid
        host, port, user, password = rig.mqtt_device_endpoint()
        device = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-lan-devices")
        device.username_pw_set(user, password)
        device.connect(host, port)
        device.loop_start()
        trace_path = workdir / "strace.txt"
        window = minutes * 60
        started, tick, sent = time.monotonic(), 0, []
        measuring_from = started + warmup
        figures0 = None
        while time.monotonic() < measuring_from + window:
            if figures0 is None and time.monotonic() >= measuring_from:
                strace = subprocess.Popen(
                    ["strace", "-f", "-qq", "-ttt", "-y", "-s", "0", "-e", f"trace={TRACED}",
                     "-e", "signal=none", "-o", str(trace_path), "-p", str(pid)],
                    stderr=subprocess.DEVNULL)
                time.sleep(1.0)   # strace attaches to every thread
                figures0 = (io_write_bytes(pid), rig.block_device_bytes_written(),
                            time.monotonic())
            sent += publish_round(device, tick)
            tick += 1
            time.sleep(max(0.0, started + tick * LAN_PERIOD_S - time.monotonic()))
        io1, dev1, t1 = io_write_bytes(pid), rig.block_device_bytes_written(), time.monotonic()
        strace.send_signal(signal.SIGINT)
        strace.wait(timeout=30)
        strace = None
        acked = sum(m.is_published() for m in sent)
        io0, dev0, t0 = figures0
        seconds = t1 - t0
        report(per_file(trace_path.read_text(errors="replace"), str(rig.data_dir)),
               seconds, io1 - io0, dev1 - dev0, len(sent), acked)
    finally:
        if strace is not None:
            strace.send_signal(signal.SIGINT)
            strace.wait(timeout=30)
        if device is not None:
            device.disconnect()
            device.loop_stop()
        rig.close()


def report(figures: dict[str, FileFigures], seconds: float, process_bytes: int,
           device_bytes: int, messages: int, acked: int) -> None:
    day = 86400 / seconds
    print(f"window {seconds:.0f} s, scaled to a day x{day:.0f}; LAN messages {messages}, "
          f"acknowledged {acked}")
    print()
    print("| file | writes/min | bytes written MiB/day | pages dirtied MiB/day | syncs/min "
          "| of them with nothing to write | created, renamed, removed, truncated /min |")
    print("|---|---|---|---|---|---|---|")
    per_min = 60 / seconds
    total = FileFigures()
    for name, f in sorted(figures.items(), key=lambda kv: -kv[1].pages):
        print(f"| `{name}` | {f.writes * per_min:.1f} | {f.bytes * day / MIB:.1f} "
              f"| {f.pages * PAGE * day / MIB:.1f} | {f.syncs * per_min:.1f} "
              f"| {f.empty_syncs * per_min:.1f} | {f.metadata * per_min:.1f} |")
        for field in dataclasses.fields(FileFigures):
            setattr(total, field.name, getattr(total, field.name) + getattr(f, field.name))
    print(f"| all files of the data directory | {total.writes * per_min:.1f} "
          f"| {total.bytes * day / MIB:.1f} | {total.pages * PAGE * day / MIB:.1f} "
          f"| {total.syncs * per_min:.1f} | {total.empty_syncs * per_min:.1f} "
          f"| {total.metadata * per_min:.1f} |")
    print()
    print(f"process write_bytes (/proc/<pid>/io): {process_bytes * day / MIB:.1f} MiB/day "
          f"({process_bytes * per_min / 1024:.1f} KiB/min)")
    print(f"card block device (ext4 journal and metadata included): "
          f"{device_bytes * day / MIB:.1f} MiB/day")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=3.0, help="the measured window")
    p.add_argument("--warmup", type=float, default=30.0,
                   help="seconds of load before the window (start-up writes left out)")
    args = p.parse_args()
    # Not measured (said, not failed, so that `make bench` goes on to the others) without root
    # or strace (deps/debian-bench.txt, installed by `make bench` as root).
    if os.geteuid() != 0:
        print("card writes: not measured: needs root (the card is a loop-mounted ext4)")
        return 0
    if shutil.which("strace") is None:
        print("card writes: not measured: needs strace (Debian package strace)")
        return 0
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="card-writes-"))
    try:
        run(args.minutes, args.warmup, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
