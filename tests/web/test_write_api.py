"""The InfluxDB write endpoints of a live gateway: durable 204s, partial writes, precision,
gzip (and gzip bombs), body limits, bad input, each answered in InfluxDB's error format and
counted on /metrics."""

import base64
import gzip
import json
import re
import socket
import time

import pytest

from web_harness import cli, start_gateway

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def exported(gateway, measurement: str) -> list[str]:
    done = cli("export", "--bucket", "raw", "--measurement", measurement, data_dir=gateway.data_dir)
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line]


def metric(gateway, name: str, **labels) -> float:
    return gateway.metric(name, **labels) or 0.0


def test_v2_write_is_durable_and_exported(gateway):
    now = time.time_ns()
    status, headers, body = gateway.write(f"w_basic,a=1 f=1.5,i=2i,s=\"x\",b=true {now}")
    assert status == 204 and body == b""
    assert sorted(exported(gateway, "w_basic")) == sorted([
        f"w_basic,a=1 f=1.5 {now}", f"w_basic,a=1 i=2i {now}", f'w_basic,a=1 s="x" {now}',
        f"w_basic,a=1 b=true {now}"])


def test_a_lone_client_sending_small_batches_on_one_connection_is_not_held_for_wal_sync(tmp_path):
    """A client that sends a batch, waits for the 204 and sends the next (Telegraf draining its
    buffer) is the only writer waiting: each batch is committed at once, not once per
    wal_sync (an hour here), and each 204 still means synced."""
    import http.client

    gw = start_gateway(tmp_path, '[store]\nwal_sync = "1h"\nlocal_sync = "1h"\n',
                       scopes=("write",))
    try:
        conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=60)
        now = time.time_ns()
        for batch in range(5):
            lines = "\n".join(f"w_lone,c={i} v={batch}i {now + batch}" for i in range(50))
            conn.request("POST", "/api/v2/write?org=o&bucket=raw", body=lines,
                         headers={"Authorization": f"Token {gw.tokens['write']}"})
            r = conn.getresponse()
            assert (r.status, r.read()) == (204, b"")
        conn.close()
    finally:
        assert gw.stop() == 0, gw.log()
    out = cli("export", "--bucket", "raw", "--measurement", "w_lone", data_dir=gw.data_dir)
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 250, out.stderr


def test_partial_write_keeps_good_lines_and_names_the_first_bad_one(gateway):
    now = time.time_ns()
    body = f"w_partial v=1 {now}\nw_partial v=2 {now + 1}\nw_partial v=oops {now + 2}\nw_partial,x v= 1\nw_partial v=5 {now + 3}\n"
    before = metric(gateway, "gateway_ingest_bad_total", reader="http", reason="bad_line")
    status, _, answer = gateway.write(body)
    assert status == 400
    err = json.loads(answer)
    assert err["code"] == "invalid"
    assert err["message"].startswith("partial write error (3 written): unable to parse 'w_partial v=oops")
    assert "line 3" in err["message"] and "1 more bad lines" in err["message"]
    assert len(exported(gateway, "w_partial")) == 3
    assert metric(gateway, "gateway_ingest_bad_total", reader="http", reason="bad_line") == before + 2


def test_v1_write_with_password_and_basic_auth(gateway):
    now_s = time.time_ns() // 10**9
    token = gateway.tokens["write"]
    status, _, _ = gateway.request("POST", f"/write?db=raw&precision=s&u=anyone&p={token}",
                                   body=f"w_v1,via=query v=1 {now_s}")
    assert status == 204
    basic = base64.b64encode(f"anyone:{token}".encode()).decode()
    status, _, _ = gateway.request("POST", "/write?db=raw&precision=ms",
                                   body=f"w_v1,via=basic v=2 {now_s * 1000}",
                                   headers={"Authorization": f"Basic {basic}"})
    assert status == 204
    status, _, body = gateway.request("POST", f"/write?db=raw&u=x&p={token}", body="w_v1 v=")
    assert status == 400 and "error" in json.loads(body)  # InfluxDB 1.x error shape
    assert sorted(exported(gateway, "w_v1")) == [f"w_v1,via=basic v=2 {now_s * 10**9}",
                                                f"w_v1,via=query v=1 {now_s * 10**9}"]


def test_gzip_body(gateway):
    now = time.time_ns()
    lines = "".join(f"w_gzip,n={i} v={i} {now}\n" for i in range(1000)).encode()
    status, _, _ = gateway.write(gzip.compress(lines), headers={"Content-Encoding": "gzip"})
    assert status == 204
    assert len(exported(gateway, "w_gzip")) == 1000


def test_gzip_bomb_is_refused(gateway):
    bomb = gzip.compress(b"a" * (40 << 20))  # 40 MiB of 'a' in about 40 KiB; the cap is 32 MiB
    assert len(bomb) < 100_000
    before = metric(gateway, "gateway_ingest_bad_total", reader="http", reason="too_large")
    status, _, body = gateway.write(bomb, headers={"Content-Encoding": "gzip"})
    assert status == 413
    assert json.loads(body)["code"] == "request too large" and "decompresses" in json.loads(body)["message"]
    assert metric(gateway, "gateway_ingest_bad_total", reader="http", reason="too_large") == before + 1


@pytest.mark.parametrize("body,why", [(b"\x1f\x8b\x08garbage", "not valid gzip"),
                                      (gzip.compress(b"w v=1\n")[:-8], "truncated")])
def test_bad_gzip(gateway, body, why):
    status, _, answer = gateway.write(body, headers={"Content-Encoding": "gzip"})
    assert status == 400 and why in json.loads(answer)["message"]


def test_body_over_the_limit(gateway):
    # Announced too large: refused before the body is read (the client may still be sending).
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=60) as s:
        s.sendall(b"POST /api/v2/write?bucket=raw HTTP/1.1\r\nHost: x\r\n"
                  b"Authorization: Token " + gateway.tokens["write"].encode() +
                  b"\r\nContent-Length: 10485760\r\n\r\nw_big v=1\n")
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert json.loads(body)["code"] == "request too large"
    # Chunked, without a length: refused once more than the limit has arrived.
    def chunks():
        for _ in range(10):
            yield b"w_big v=1\n" * 104858
    status, _, body = gateway.write(chunks(), headers={"Transfer-Encoding": "chunked"})
    assert status == 413 and json.loads(body)["code"] == "request too large"
    assert exported(gateway, "w_big") == []


def test_invalid_utf8_line_is_refused_and_neighbours_kept(gateway):
    now = time.time_ns()
    body = f"w_utf8 v=1 {now}\n".encode() + b"w_utf8,t=\xff\xfe v=2\n" + f"w_utf8 v=3 {now + 1}\n".encode()
    status, _, answer = gateway.write(body)
    assert status == 400 and "line 2" in json.loads(answer)["message"]
    assert len(exported(gateway, "w_utf8")) == 2


def test_unknown_bucket_and_wrong_precision(gateway):
    status, _, body = gateway.write(b"w v=1", bucket="nope")
    assert status == 404 and json.loads(body) == {"code": "not found", "message": 'bucket "nope" not found'}
    status, _, body = gateway.write(b"w v=1", precision="h")
    assert status == 400 and "invalid precision 'h'" in json.loads(body)["message"]
    status, _, body = gateway.request("POST", "/api/v2/write?org=o", body=b"w v=1", token=gateway.tokens["write"])
    assert status == 400 and "bucket is required" in json.loads(body)["message"]
    assert metric(gateway, "gateway_ingest_bad_total", reader="http", reason="unknown_bucket") >= 1
    assert metric(gateway, "gateway_ingest_bad_total", reader="http", reason="bad_precision") >= 1


def test_points_older_than_retention_are_refused_with_422(gateway):
    status, _, body = gateway.write(b"w_old v=1 1000000000")  # 1970, raw keeps 30 days
    assert status == 422 and "dropped=1" in json.loads(body)["message"]


def test_slow_clients_hold_no_worker(gateway):
    """Slow clients (half a request, then silence) are more than the worker threads; writes
    still go through, and the silent connections are closed after http.timeout."""
    slow = []
    for _ in range(12):
        s = socket.create_connection(("127.0.0.1", gateway.port))
        s.sendall(b"POST /api/v2/write?bucket=raw HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nw v=")
        slow.append(s)
    try:
        for i in range(5):
            status, _, _ = gateway.write(f"w_slow v={i} {time.time_ns()}")
            assert status == 204
        for s in slow:
            s.settimeout(60)
            assert s.recv(4096) == b""  # closed by the server, nothing answered
    finally:
        for s in slow:
            s.close()


def test_health_ping_ready(gateway):
    status, headers, body = gateway.request("GET", "/ping")
    assert status == 204 and headers["X-Influxdb-Version"]
    health = gateway.json("/health")
    assert health["status"] == "pass" and health["checks"] == []
    ready = gateway.json("/ready")
    assert ready["status"] == "ready" and re.fullmatch(r"\d+h\d+m\d+s", ready["up"])


def test_metrics_exposition(gateway):
    gateway.write(f"w_metrics v=1 {time.time_ns()}")
    assert metric(gateway, "gateway_ingest_points_total", reader="http") >= 1
    assert metric(gateway, "gateway_store_points_written_total", bucket="raw") >= 1
    assert metric(gateway, "process_resident_memory_bytes") > 0
    assert metric(gateway, "gateway_component_up", component="store") == 1
