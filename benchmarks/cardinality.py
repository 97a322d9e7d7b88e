"""Series cardinality benchmark: many series of one point each, written and exported.

Workload: N series (``m,host=h<i>,dc=d<i % 100> value=<float>``, one point each, all at one
recent timestamp) imported with ``gateway write`` into a fresh data directory, then exported
with ``gateway export`` to /dev/null. Each command runs in its own process; the table shows its
wall time and peak RSS (the kernel's ru_maxrss of that child), and the bytes per series.

    python benchmarks/cardinality.py [--series 200000] [--gateway .venv/bin/gateway]

Then the daemon case: ``gateway run`` (no readers, no rollup task, status page on a free
loopback port, ``head_max_age`` 5 s) is given ``--daemon-series`` such series through its control
socket by ``gateway write``; the table shows the daemon's RSS when ready, after the write, and
once its idle heads are sealed (``head_max_age`` and two checkpoints later), and its peak.

``--gateway`` picks the installation to measure (another checkout's for a before/after). The
line protocol file is generated once per N and cached in the temporary directory.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def lines_file(n: int) -> str:
    path = os.path.join(tempfile.gettempdir(), f"gateway-cardinality-{n}.lp")
    if not os.path.exists(path):
        ts = (time.time_ns() // 10**9 - 3600) * 10**9
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            for i in range(n):
                f.write(f"m,host=h{i},dc=d{i % 100} value={i * 0.5} {ts}\n")
        os.replace(tmp, path)
    return path


def run(argv: list[str], stdout=subprocess.DEVNULL) -> tuple[float, int, int]:
    """(seconds, peak RSS in bytes, exit status) of one command."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        print(f"{' '.join(argv[:2])} failed ({code}): {err[-500:]}", file=sys.stderr)
    return seconds, usage.ru_maxrss * 1024, code


def rss_of(pid: int) -> tuple[int, int]:
    """(current, peak) RSS of a running process, bytes."""
    got = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                got[name] = int(value.split()[0]) * 1024
    return got["VmRSS"], got["VmHWM"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def daemon_case(gateway: str, n: int) -> list[tuple[str, int, int]]:
    """(moment, RSS, peak RSS) of a daemon given n one-point series through its socket."""
    src = lines_file(n)
    data = tempfile.mkdtemp(prefix="gateway-cardinality-daemon-")
    config = os.path.join(data, "gateway.toml")
    with open(config, "w") as f:
        f.write(f'[gateway]\ndata_dir = "{data}"\n[readers]\n[scheduler]\ndefault_rollup = false\n'
                f'[http]\nlisten = "127.0.0.1:{free_port()}"\n'
                '[store]\nhead_max_age = "5s"\ncheckpoint_interval = "2s"\n'
                f'[store.buckets.raw]\nmax_size = "256MiB"\nretention = "30d"\n')
    log_path = os.path.join(data, "daemon.log")
    rows = []
    with open(log_path, "w") as log:
        proc = subprocess.Popen([gateway, "run", "--config", config], stdout=log, stderr=log)
    try:
        while "gateway ready" not in open(log_path).read():
            if proc.poll() is not None:
                raise RuntimeError(f"gateway run exited: {open(log_path).read()[-500:]}")
            time.sleep(0.2)
        rows.append(("ready", *rss_of(proc.pid)))
        seconds, _, code = run([gateway, "write", "--config", config, src])
        rows.append((f"after write ({seconds:.1f} s{'' if code == 0 else ', failed'})",
                     *rss_of(proc.pid)))
        time.sleep(5 + 2 * 2 + 2)   # head_max_age, then two checkpoints seal and index the heads
        rows.append(("heads sealed", *rss_of(proc.pid)))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(data, ignore_errors=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=200_000)
    ap.add_argument("--daemon-series", type=int, default=200_000,
                    help="series for the daemon case (0: skip it)")
    ap.add_argument("--gateway", default=os.path.join(os.path.dirname(sys.executable), "gateway"))
    args = ap.parse_args()
    n = args.series
    src = lines_file(n)
    data = tempfile.mkdtemp(prefix="gateway-cardinality-")
    config = os.path.join(data, "gateway.toml")
    with open(config, "w") as f:
        f.write('[store.buckets.raw]\nmax_size = "256MiB"\nretention = "30d"\n')
        if n > 1_000_000:   # past the default max_series (older gateways know no such key)
            f.write(f"max_series = {n}\n")
    try:
        rows = []
        w = run([args.gateway, "write", "--config", config, "--data-dir", data, src])
        rows.append(("gateway write", *w))
        with open(os.devnull, "wb") as null:
            e = run([args.gateway, "export", "--config", config, "--data-dir", data], stdout=null)
        rows.append(("gateway export", *e))
    finally:
        shutil.rmtree(data, ignore_errors=True)
    print(f"{n} series of one point ({args.gateway})")
    print(f"{'command':<16} {'seconds':>8} {'peak RSS':>10} {'bytes/series':>13} {'status':>7}")
    for name, seconds, rss, code in rows:
        print(f"{name:<16} {seconds:>8.1f} {rss / 2**20:>8.0f} MB {rss / n:>13.0f} {code:>7}")
    if args.daemon_series:
        rows = daemon_case(args.gateway, args.daemon_series)
        print(f"\ngateway run given {args.daemon_series} series through its control socket")
        print(f"{'moment':<28} {'RSS':>8} {'peak RSS':>10}")
        for moment, rss, peak in rows:
            print(f"{moment:<28} {rss / 2**20:>5.0f} MB {peak / 2**20:>7.0f} MB")


if __name__ == "__main__":
    main()
