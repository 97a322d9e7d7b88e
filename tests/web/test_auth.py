"""Tokens: no token, wrong token, wrong scope; tokens never in the logs nor stored in clear;
status pages public by default, behind a sign-in with CSRF-protected forms when not."""

import http.cookiejar
import json
import os
import re
import stat
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from web_harness import cli, start_gateway

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def line(now=None):
    return f"auth_probe v=1 {now or time.time_ns()}"


def test_write_needs_a_write_token(gateway):
    status, _, body = gateway.request("POST", "/api/v2/write?bucket=raw", body=line())
    assert status == 401 and json.loads(body)["code"] == "unauthorized"
    status, _, body = gateway.write(line(), token="gw_" + "x" * 43)
    assert status == 401 and json.loads(body) == {"code": "unauthorized", "message": "unauthorized access"}
    status, _, body = gateway.write(line(), token=gateway.tokens["query"])
    assert status == 403 and "insufficient permissions for write" in json.loads(body)["message"]
    assert gateway.write(line(), token=gateway.tokens["admin"])[0] == 204
    assert gateway.request("POST", f"/write?db=raw&u=x&p=wrong-token-123456", body=line())[0] == 401
    assert gateway.request("POST", f"/write?db=raw&u=x&p={gateway.tokens['query']}", body=line())[0] == 403


def test_metrics_need_a_query_token(gateway):
    assert gateway.request("GET", "/metrics")[0] == 401
    assert gateway.request("GET", "/metrics", token=gateway.tokens["write"])[0] == 403
    assert gateway.request("GET", "/metrics", headers={"Authorization": f"Bearer {gateway.tokens['query']}"})[0] == 200


def test_status_pages_are_public_by_default(gateway):
    for path in ("/", "/sensors", "/api/status/overview", "/health", "/ping", "/api/openapi.json"):
        assert gateway.request("GET", path)[0] in (200, 204), path


def test_tokens_stored_hashed_and_never_logged(gateway):
    path = os.path.join(gateway.data_dir, "tokens.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    stored = open(path).read()
    # every way a token reaches the gateway, including failures
    for scope, token in gateway.tokens.items():
        assert token not in stored
        gateway.write(line(), token=token)
        gateway.request("POST", f"/write?db=raw&u=u&p={token}", body="bad line")
        gateway.request("GET", "/metrics", token=token)
    gateway.request("POST", "/write?db=nope&u=u&p=gw_secret_wrong_token", body=line())
    log = gateway.log()
    assert "status page and HTTP API on" in log  # the log is the gateway's, at debug level
    for token in [*gateway.tokens.values(), "gw_secret_wrong_token"]:
        assert token not in log


def test_token_cli(tmp_path):
    data = tmp_path / "data"
    first = cli("token", "create", "--scope", "query", data_dir=data)
    assert first.returncode == 0 and re.fullmatch(r"gw_[A-Za-z0-9_-]{43}\n", first.stdout)
    chosen = tmp_path / "token"
    chosen.write_text("operator-chosen-token-0001\n")
    second = cli("token", "create", "--scope", "write", "--token-file", str(chosen), data_dir=data)
    assert second.returncode == 0 and second.stdout == ""
    short = tmp_path / "short"
    short.write_text("abc\n")
    third = cli("token", "create", "--scope", "write", "--token-file", str(short), data_dir=data)
    assert third.returncode == 1 and "at least 16 characters" in third.stderr
    bad = cli("token", "create", "--scope", "root", data_dir=data)
    assert bad.returncode == 2
    stored = json.loads((data / "tokens.json").read_text())["tokens"]
    assert [t["scope"] for t in stored] == ["query", "write"]
    assert "operator-chosen-token-0001" not in (data / "tokens.json").read_text()


def test_private_status_pages_sign_in_with_csrf(tmp_path):
    gw = start_gateway(tmp_path, "public_status = false")
    try:
        assert gw.request("GET", "/api/status/overview")[0] == 401
        assert gw.request("GET", "/api/status/overview", token=gw.tokens["write"])[0] == 403
        assert gw.request("GET", "/api/status/overview", token=gw.tokens["query"])[0] == 200
        status, headers, _ = gw.request("GET", "/sensors")
        assert status == 302 and headers["Location"].startswith("/login")

        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        form = opener.open(gw.url + "/login?next=/storage").read().decode()
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)

        def post(path, **fields):
            data = urllib.parse.urlencode(fields).encode()
            try:
                r = opener.open(gw.url + path, data=data)
                return r.status, r.geturl(), r.read().decode()
            except urllib.error.HTTPError as e:
                return e.code, path, e.read().decode()

        # without the CSRF token, or with another one, the form is refused
        assert post("/login?next=/storage", token=gw.tokens["query"])[0] == 403
        assert post("/login?next=/storage", token=gw.tokens["query"], csrf_token="forged")[0] == 403
        assert post("/login?next=/storage", token="wrong-token-wrong-token", csrf_token=csrf)[0] == 401
        status, url, page = post("/login?next=/storage", token=gw.tokens["query"], csrf_token=csrf)
        assert status == 200 and url.endswith("/storage") and "<h1>Storage</h1>" in page
        assert opener.open(gw.url + "/api/status/storage").status == 200
        assert gw.tokens["query"] not in str([c.value for c in jar])
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        assert post("/logout")[0] == 403
        assert post("/logout", csrf_token=csrf)[0] == 200
        with pytest.raises(urllib.error.HTTPError) as e:
            opener.open(gw.url + "/api/status/storage")
        assert e.value.code == 401
    finally:
        assert gw.stop() == 0
