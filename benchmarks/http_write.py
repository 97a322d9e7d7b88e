"""HTTP write benchmark: the store benchmark's day (100 float + 20 counter series at 1 Hz,
10,368,000 points) sent to a live ``gateway run`` through ``POST /api/v2/write`` in bodies of
5,000 lines by two keep-alive writers, each waiting for its 204 (durable: the store's group
commit has synced the points) before the next body.

Prints points/s, CPU per point (the gateway's and the load generator's, which share the
machine's cores), the gateway's peak RSS, and the latency of the status JSON
(``/api/status/overview`` and ``/api/status/storage``) sampled while the writers run and after.

    python benchmarks/http_write.py [--points N] [--writers 2] [--wal-sync 1s]

The line protocol file is the store benchmark's (generated once, cached in the temp directory).
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import os
import pathlib
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
REFERENCE = [("InfluxDB 1.6.7 (durable)", "1.14 M"), ("VictoriaMetrics 1.79.5 (acks before disk)", "2.62 M")]


def _store_benchmark():
    spec = importlib.util.spec_from_file_location("store_benchmark", HERE / "store.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lp_file(bench, directory: str) -> str:
    """The store benchmark's day in time order, generated in a child process (its memory must
    not count) unless cached."""
    path = os.path.join(directory, "gateway-bench-store-time-bytes.lp")
    if not os.path.exists(path):
        print(f"generating {path} (once) ...", file=sys.stderr)
        code = (f"import importlib.util; s = importlib.util.spec_from_file_location('b', {str(HERE / 'store.py')!r}); "
                f"m = importlib.util.module_from_spec(s); s.loader.exec_module(m); m.generate({path!r}, 'time', 'bytes')")
        subprocess.run([sys.executable, "-c", code], check=True)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def start_gateway(work: str, wal_sync: str):
    port = free_port()
    data = os.path.join(work, "data")
    config = os.path.join(work, "gateway.toml")
    with open(config, "w") as f:
        f.write(f'[http]\nlisten = "127.0.0.1:{port}"\n[store]\nwal_sync = "{wal_sync}"\n'
                f'[store.buckets.bench]\nmax_size = "512MiB"\n')
    env = {**os.environ, "GATEWAY_HW": "emulated"}
    token = subprocess.run([sys.executable, "-m", "gateway", "token", "create", "--scope", "write",
                            "--config", config, "--data-dir", data], env=env, check=True,
                           capture_output=True, text=True).stdout.strip()
    log = open(os.path.join(work, "gateway.log"), "w")
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "run", "--config", config,
                             "--data-dir", data], stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return proc, port, token
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the gateway did not start; see " + log.name)


def status_latency(port: int, stop: threading.Event, out: list, paths=("/api/status/overview", "/api/status/storage")):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while not stop.is_set():
        for path in paths:
            t0 = time.perf_counter()
            conn.request("GET", path)
            r = conn.getresponse()
            r.read()
            out.append((path, time.perf_counter() - t0, r.status))
        stop.wait(0.25)
    conn.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--points", type=int, default=10_368_000, help="points to send (default: the whole day)")
    p.add_argument("--writers", type=int, default=2)
    p.add_argument("--wal-sync", default="1s", help="store.wal_sync of the gateway under test")
    p.add_argument("--dir", default=tempfile.gettempdir())
    args = p.parse_args()

    bench = _store_benchmark()
    path = lp_file(bench, args.dir)
    offsets = bench.batch_offsets(path)
    batches = min(len(offsets) - 1, max(1, args.points // bench.BATCH_LINES))
    work = tempfile.mkdtemp(prefix="gateway-http-bench-")
    proc, port, token = start_gateway(work, args.wal_sync)
    fd = os.open(path, os.O_RDONLY)
    errors: list = []
    next_batch = iter(range(batches))
    lock = threading.Lock()

    def writer():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        headers = {"Authorization": f"Token {token}", "Content-Type": "text/plain; charset=utf-8"}
        while True:
            with lock:
                i = next(next_batch, None)
            if i is None:
                break
            body = os.pread(fd, offsets[i + 1] - offsets[i], offsets[i])
            conn.request("POST", "/api/v2/write?org=o&bucket=bench&precision=ns", body=body, headers=headers)
            r = conn.getresponse()
            answer = r.read()
            if r.status != 204:
                errors.append((r.status, answer[:200]))
                break
        conn.close()

    try:
        latency_idle: list = []
        for _ in range(20):
            status_latency_once(port, latency_idle)
        latency_load: list = []
        stop = threading.Event()
        sampler = threading.Thread(target=status_latency, args=(port, stop, latency_load))
        cpu0 = cpu_seconds(proc.pid)
        own0 = time.process_time()
        t0 = time.perf_counter()
        threads = [threading.Thread(target=writer) for _ in range(args.writers)]
        sampler.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        stop.set()
        sampler.join()
        cpu = cpu_seconds(proc.pid) - cpu0
        own = time.process_time() - own0
        latency_after: list = []
        for _ in range(20):
            status_latency_once(port, latency_after)
        rss = peak_rss(proc.pid)
    finally:
        os.close(fd)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    if errors:
        print(f"write failed: {errors[0]}", file=sys.stderr)
        return 1
    points = batches * bench.BATCH_LINES
    print(f"HTTP write benchmark: {points:,} points in {batches} bodies of {bench.BATCH_LINES} lines, "
          f"{args.writers} keep-alive writers, durable 204s (wal_sync {args.wal_sync}); "
          f"{os.cpu_count()} CPUs shared with the load generator")
    print(f"  {'ingest':<34}{points / elapsed / 1e6:8.2f} M points/s  ({elapsed:.1f} s)")
    print(f"  {'gateway CPU per point':<34}{cpu / points * 1e9:8.0f} ns   ({cpu:.1f} s CPU)")
    print(f"  {'load generator CPU per point':<34}{own / points * 1e9:8.0f} ns")
    print(f"  {'gateway peak RSS':<34}{rss / 2**20:8.1f} MB")
    for label, samples in (("idle", latency_idle), ("under load", latency_load), ("after load", latency_after)):
        for path in ("/api/status/overview", "/api/status/storage"):
            ms = sorted(t * 1e3 for pth, t, status in samples if pth == path and status == 200)
            if ms:
                print(f"  {path + ' ' + label:<46} median {statistics.median(ms):6.1f} ms, "
                      f"max {ms[-1]:6.1f} ms ({len(ms)} requests)")
    print("  reference (same method, this machine class): " +
          "; ".join(f"{name} {rate} points/s" for name, rate in REFERENCE))
    return 0


def status_latency_once(port: int, out: list) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for path in ("/api/status/overview", "/api/status/storage"):
        t0 = time.perf_counter()
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        out.append((path, time.perf_counter() - t0, r.status))
    conn.close()


if __name__ == "__main__":
    sys.exit(main())
