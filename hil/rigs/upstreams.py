"""Real upstreams on this machine: Debian's victoria-metrics, influxdb (1.6) and prometheus,
each on a free loopback port with its data in a directory of its own, stopped by PID; and a TCP
fault proxy to put between the gateway and them. The HIL rigs' uplink (the emulated rig's cut
at the proxy; the ssh and qemu rigs' upstream, cut on the device) and the replication tests
(tests/replication/) both use them."""

from __future__ import annotations

import json
import pathlib
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request

from hil.rigs.mosquitto import free_port

VICTORIA_METRICS = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"
INFLUXD = shutil.which("influxd") or "/usr/bin/influxd"

def http(method: str, url: str, body: bytes | None = None, headers=None, timeout=30) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Server:
    """A server process on a free port; ``stop()`` ends it by PID (SIGTERM, then SIGKILL)."""

    name = "server"

    def __init__(self, directory: pathlib.Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = self.dir / f"{self.name}.log"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                     cwd=self.dir)
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: "
                                   f"{self.log_path.read_text(errors='replace')[-2000:]}")
            try:
                if self.ready():
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not become ready: "
                           f"{self.log_path.read_text(errors='replace')[-2000:]}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()


class VictoriaMetrics(Server):
    """Raw export shows every sample stored: deduplication is off, so resends are visible.
    ``host``/``port``: where it listens (a bench machine's LAN address for a real device),
    by default a free port on 127.0.0.1."""

    name = "victoria-metrics"

    def __init__(self, directory: pathlib.Path, *extra: str, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(directory, host, port)
        self.extra = list(extra)

    def command(self) -> list[str]:
        return [VICTORIA_METRICS, f"-httpListenAddr={self.host}:{self.port}",
                f"-storageDataPath={self.dir / 'data'}", "-retentionPeriod=100y",
                "-search.latencyOffset=0s", "-search.disableCache", *self.extra]

    def ready(self) -> bool:
        return http("GET", self.url + "/health", timeout=2)[0] == 200

    def export(self) -> dict[tuple, list[tuple[int, float]]]:
        """{(metric name, sorted labels): [(ms, value), ...]} of every stored sample, in time
        order, duplicates included."""
        http("GET", self.url + "/internal/force_flush")
        query = urllib.parse.urlencode({"match[]": '{__name__!=""}'})
        status, body = http("GET", f"{self.url}/api/v1/export?{query}")
        assert status == 200, body[:300]
        out: dict[tuple, list] = {}
        for line in body.splitlines():
            item = json.loads(line)
            metric = dict(item["metric"])
            name = metric.pop("__name__")
            key = (name, tuple(sorted(metric.items())))
            points = out.setdefault(key, [])
            points.extend(zip(item["timestamps"], map(float, item["values"])))
        for points in out.values():
            points.sort()
        return out


PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"

PROMETHEUS_CONFIG = """\
global:
  scrape_interval: 1h
storage:
  tsdb:
    out_of_order_time_window: 30d
"""


class Prometheus(Server):
    """Prometheus with its remote-write receiver on and an out-of-order window, so a backlog
    older than what it already holds is still taken; it scrapes nothing."""

    name = "prometheus"

    @property
    def write_url(self) -> str:
        return self.url + "/api/v1/write"

    def command(self) -> list[str]:
        path = self.dir / "prometheus.yml"
        path.write_text(PROMETHEUS_CONFIG)
        return [PROMETHEUS, f"--config.file={path}", f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-remote-write-receiver",
                "--storage.tsdb.retention.time=100y"]

    def ready(self) -> bool:
        return http("GET", self.url + "/-/ready", timeout=2)[0] == 200

    def export(self) -> dict[tuple, list[tuple[int, float]]]:
        """{(metric name, sorted labels): [(ms, value)]} of every sample of the last 30 days."""
        query = urllib.parse.urlencode({"query": '{__name__=~".+"}[30d]'})
        status, body = http("GET", f"{self.url}/api/v1/query?{query}")
        assert status == 200, body[:300]
        out = {}
        for item in json.loads(body)["data"]["result"]:
            metric = dict(item["metric"])
            name = metric.pop("__name__")
            out[(name, tuple(sorted(metric.items())))] = sorted(
                (round(float(t) * 1000), float(v)) for t, v in item["values"])
        return out


INFLUXDB_CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{dir}/meta"
[data]
  dir = "{dir}/data"
  wal-dir = "{dir}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{port}"
  auth-enabled = {auth}
  log-enabled = false
  max-body-size = {max_body}
[continuous_queries]
  enabled = false
"""


class InfluxDB(Server):
    """InfluxDB 1.6 with one database ``gw``; ``auth`` turns on authentication with the
    admin ``admin``/``secret`` (created before it is turned on)."""

    name = "influxdb"
    user, password = "admin", "secret"

    def __init__(self, directory: pathlib.Path, auth: bool = False, max_body: int = 25000000):
        super().__init__(directory)
        self.rpc_port = free_port()
        self.auth = auth
        self.max_body = max_body

    def command(self) -> list[str]:
        path = self.dir / "influxdb.conf"
        path.write_text(INFLUXDB_CONFIG.format(rpc_port=self.rpc_port, dir=self.dir, port=self.port,
                                               auth="true" if self.auth else "false",
                                               max_body=self.max_body))
        return [INFLUXD, "-config", str(path)]

    def ready(self) -> bool:
        return http("GET", self.url + "/ping", timeout=2)[0] == 204

    def start(self) -> None:
        super().start()
        self.query("CREATE USER admin WITH PASSWORD 'secret' WITH ALL PRIVILEGES", post=True)
        self.query("CREATE DATABASE gw", post=True)

    def query(self, q: str, post: bool = False, db: str | None = None) -> dict:
        params = {"q": q, "epoch": "ns"}
        if db:
            params["db"] = db
        if self.auth:
            params.update(u=self.user, p=self.password)
        url = f"{self.url}/query?{urllib.parse.urlencode(params)}"
        status, body = http("POST" if post else "GET", url)
        assert status == 200, body[:300]
        return json.loads(body)

    def export(self) -> dict[str, list[tuple[int, object]]]:
        """{series key as line protocol writes it: measurement,tags field}: [(ns, value)]."""
        from gateway.lineprotocol import series_key

        out: dict[str, list] = {}
        result = self.query("SHOW MEASUREMENTS", db="gw")["results"][0]
        for (measurement,) in (result.get("series") or [{}])[0].get("values", []):
            tag_keys = [r[0] for r in ((self.query(f'SHOW TAG KEYS FROM "{measurement}"', db="gw")
                                        ["results"][0].get("series") or [{}])[0].get("values", []))]
            floats = {r[0] for r in ((self.query(f'SHOW FIELD KEYS FROM "{measurement}"', db="gw")
                                      ["results"][0].get("series") or [{}])[0].get("values", []))
                      if r[1] == "float"}  # JSON writes integral floats as integers
            data = self.query(f'SELECT * FROM "{measurement}" GROUP BY *', db="gw")["results"][0]
            for series in data.get("series", []):
                tags = {k: v for k, v in (series.get("tags") or {}).items() if v != ""}
                columns = series["columns"]
                for row in series["values"]:
                    for name, value in zip(columns[1:], row[1:]):
                        if value is None or name in tag_keys:
                            continue
                        if name in floats:
                            value = float(value)
                        key = series_key(measurement, tags, name)
                        out.setdefault(key, []).append((row[0], value))
        for points in out.values():
            points.sort()
        return out


class FaultProxy:
    """A TCP proxy on a free loopback port in front of ``target`` (host, port). ``mode``:
    ``pass``; ``delay`` (each piece waits ``delay`` s); ``reset`` (connections are reset at
    once); ``blackhole`` (bytes are taken and nothing comes back); ``drip`` (answers come one
    byte every ``delay`` s); ``answer`` (every request gets ``answer``, raw HTTP, and the
    upstream sees nothing). Runs on its own threads; ``close()`` stops it."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.mode = "pass"
        self.delay = 0.2
        self.answer = b""
        self.connections = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self._closed = False
        self._open: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set(self, mode: str, **options) -> None:
        self.mode = mode
        for k, v in options.items():
            setattr(self, k, v)
        self.drop_connections()  # a kept-alive connection would go on in the old mode

    def drop_connections(self) -> None:
        for s in list(self._open):
            try:
                s.close()
            except OSError:
                pass

    def close(self) -> None:
        self._closed = True
        self._sock.close()
        self.drop_connections()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(client, self.mode), daemon=True).start()

    def _serve(self, client: socket.socket, mode: str) -> None:
        self._open.add(client)
        try:
            if mode == "reset":
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                return
            if mode == "blackhole":
                while client.recv(65536):
                    pass
                return
            if mode == "answer":
                self._answer(client)
                return
            upstream = socket.create_connection(self.target, timeout=30)
            self._open.add(upstream)
            threading.Thread(target=self._pump, args=(client, upstream, mode, False),
                             daemon=True).start()
            self._pump(upstream, client, mode, True)
        except OSError:
            pass
        finally:
            self._open.discard(client)
            try:
                client.close()
            except OSError:
                pass

    def _answer(self, client: socket.socket) -> None:
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                piece = client.recv(65536)
                if not piece:
                    return
                buf += piece
            head, _, rest = buf.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(rest) < length:
                piece = client.recv(65536)
                if not piece:
                    return
                rest += piece
            buf = rest[length:]
            client.sendall(self.answer)

    def _pump(self, src: socket.socket, dst: socket.socket, mode: str, answers: bool) -> None:
        try:
            while True:
                piece = src.recv(65536)
                if not piece:
                    break
                if mode == "delay":
                    time.sleep(self.delay)
                if mode == "drip" and answers:
                    for i in range(len(piece)):
                        dst.sendall(piece[i:i + 1])
                        time.sleep(self.delay)
                else:
                    dst.sendall(piece)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class Uplink:
    """The emulated rig's uplink: a real VictoriaMetrics on this machine, reached only through a
    :class:`FaultProxy` (the device's way out). A cut makes the proxy reset every connection,
    open ones included, as a dead link or a refusing peer does; a restore lets them through.
    (The rigs on the image cut on the device instead: ``device_uplink.py``.)"""

    def __init__(self, directory: pathlib.Path) -> None:
        self.upstream = VictoriaMetrics(directory)
        self.upstream.start()
        try:
            self.proxy = FaultProxy(("127.0.0.1", self.upstream.port))
        except OSError:
            self.upstream.stop()
            raise
        self.cut = False

    @property
    def port(self) -> int:
        """The proxy's port on 127.0.0.1: what a device reaches."""
        return self.proxy.port

    def set_cut(self, cut: bool) -> None:
        self.proxy.set("reset" if cut else "pass")
        self.cut = cut

    def export(self) -> dict[tuple, list[tuple[int, float]]]:
        return self.upstream.export()

    def close(self) -> None:
        self.proxy.close()
        self.upstream.stop()
