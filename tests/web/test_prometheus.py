"""A real Prometheus (Debian's package) scrapes the gateway's /metrics with a query token;
its own HTTP API then returns gateway metrics."""

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from web_harness import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: Prometheus scrapes every second; the first samples arrive within this.
SCRAPE_WAIT_S = 60


@pytest.fixture
def prometheus(gateway, tmp_path):
    binary = shutil.which("prometheus")
    assert binary, "install Debian's prometheus package"
    token_file = tmp_path / "token"
    token_file.write_text(gateway.tokens["query"])
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: gateway
    authorization:
      type: Bearer
      credentials_file: {token_file}
    static_configs:
      - targets: ["127.0.0.1:{gateway.port}"]
""")
    port = free_port()
    log = open(tmp_path / "prometheus.log", "w")
    proc = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=log, stderr=subprocess.STDOUT)
    yield f"http://127.0.0.1:{port}", proc, tmp_path / "prometheus.log"
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


def query(base: str, expr: str) -> list:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as r:
        answer = json.load(r)
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def test_prometheus_scrapes_gateway_metrics(gateway, prometheus):
    base, proc, log_path = prometheus
    assert gateway.write(f"prom_probe v=1 {time.time_ns()}")[0] == 204
    deadline = time.monotonic() + SCRAPE_WAIT_S
    result = []
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            result = query(base, 'gateway_store_points_written_total{bucket="raw",job="gateway"}')
        except OSError:
            result = []
        if result:
            break
        time.sleep(0.5)
    assert result, log_path.read_text()
    assert float(result[0]["value"][1]) >= 1
    up = query(base, 'up{job="gateway"}')
    assert up and up[0]["value"][1] == "1"
    assert query(base, 'gateway_ingest_points_total{reader="http"}')
    assert query(base, "process_resident_memory_bytes")
