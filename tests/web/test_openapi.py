"""schemathesis (every check) against the OpenAPI document the gateway serves: zero failures."""

import shutil
import subprocess
import sys
import pathlib

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_schemathesis_finds_nothing(gateway, tmp_path):
    binary = shutil.which("schemathesis") or str(pathlib.Path(sys.executable).parent / "schemathesis")
    done = subprocess.run([binary, "run", f"{gateway.url}/api/openapi.json", "--checks", "all",
                           "--max-examples", "40", "--workers", "1", "--seed", "1"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(pathlib.Path.home()),
                               "SCHEMATHESIS_TELEMETRY": "false"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No issues found" in done.stdout
    assert "10 selected / 10 total" in done.stdout


def test_openapi_document_covers_the_status_api(gateway):
    doc = gateway.json("/api/openapi.json")
    assert doc["openapi"].startswith("3.")
    for page in ("overview", "sensors", "storage", "ingest", "tasks", "replication", "configuration"):
        assert f"/api/status/{page}" in doc["paths"]
