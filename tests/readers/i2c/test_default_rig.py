"""``gateway run`` with no configuration file on the emulated rig (what ``make run`` does):
the BME280 and SHT31 of the rig and the host metrics end up in the store."""

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

from gateway.config import defaults
from gateway.store import Store

pytestmark = pytest.mark.slow

#: How long the gateway may take to start and read every sensor once (a loaded machine).
READINGS_DEADLINE_S = 60.0
EXPECTED_PREFIXES = ("environment,address=0x76,", "environment,address=0x44,", "host_memory ")


def exported_lines(directory) -> list[str]:
    """What ``gateway export`` shows of the running gateway (through its control socket)."""
    out = subprocess.run([sys.executable, "-m", "gateway", "export", "--data-dir", str(directory)],
                         capture_output=True, text=True, timeout=60)
    return out.stdout.splitlines() if out.returncode == 0 else []


def wait_for_readings(proc, directory) -> None:
    """Until each sensor and the host metrics have been read once (or the deadline)."""
    deadline = time.monotonic() + READINGS_DEADLINE_S
    while time.monotonic() < deadline and proc.poll() is None:
        lines = exported_lines(directory)
        if all(any(l.startswith(p) for l in lines) for p in EXPECTED_PREFIXES):
            return
        time.sleep(0.5)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("rig") / "data"
    env = {**os.environ, "GATEWAY_HW": "emulated"}
    env.pop("NOTIFY_SOCKET", None)
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "run", "--data-dir", str(directory)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_readings(proc, directory)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, output
    return directory, output


def stored_series(directory):
    async def read():
        store = Store(str(directory), defaults().store)
        await store.open()
        try:
            return {c.key: list(c.values) for c in await store.scan("raw")}
        finally:
            await store.close()
    return asyncio.run(read())


def test_rig_and_host_metrics_are_stored(data_dir):
    directory, output = data_dir
    series = stored_series(directory)
    # the rig's points say they are emulated, and so does the log
    bme = "environment,address=0x76,bus=1,part=bme280,sensor=rig-bme280,source=emulated"
    sht = "environment,address=0x44,bus=1,part=sht3x,sensor=rig-sht31,source=emulated"
    assert "emulated hardware" in output
    for key in (f"{bme} temperature_c", f"{bme} humidity_pct", f"{bme} pressure_pa",
                f"{sht} temperature_c", f"{sht} humidity_pct"):
        assert series.get(key), f"{key} missing; stored: {sorted(series)}\n{output}"
    assert all(15 < t < 30 for t in series[f"{bme} temperature_c"])
    assert all(99000 < p < 104000 for p in series[f"{bme} pressure_pa"])
    assert all(30 < h < 60 for h in series[f"{sht} humidity_pct"])
    assert series.get("host_system load1") and series.get("host_memory total_bytes")
    assert any(k.startswith("gateway ") and k.endswith("rss_bytes") for k in series)


def test_visible_with_gateway_export(data_dir):
    directory, _ = data_dir
    lines = exported_lines(directory)
    assert any(l.startswith("environment,address=0x76,bus=1,part=bme280,sensor=rig-bme280,"
                            "source=emulated ") and "pressure_pa=" in l for l in lines)
    assert any(l.startswith("environment,address=0x44,bus=1,part=sht3x,sensor=rig-sht31,"
                            "source=emulated ") for l in lines)
    assert any(l.startswith("host_memory ") for l in lines)
