"""Host reader on a made-up /proc and /sys, and once on this machine's real ones."""

import asyncio
import pathlib
import stat
import time

import pytest

from gateway.config import load_text
from gateway.errors import ConfigError
from gateway.readers import host
from gateway.readers.host import metrics
from gateway.runtime import Component, Context


class RecordingStore(Component):
    name = "store"

    def __init__(self, points_written=0, bytes_written=0):
        super().__init__()
        self.rows = []
        self.waits = []  # the wait flag of each write
        self.points_written = points_written
        self.bytes_written = bytes_written

    async def write(self, batch, bucket="raw", wait=True):
        self.waits.append(wait)
        self.rows += [(bucket, *p) for p in batch.points()]

    def health(self):
        return {"name": "store", "buckets": {
            "raw": {"points_written": self.points_written, "bytes_written": self.bytes_written},
            "rollup": {"points_written": 0, "bytes_written": 100}}}


def fake_pi(tmp_path: pathlib.Path, throttled="0x50005"):
    proc, sys = tmp_path / "proc", tmp_path / "sys"
    (proc / "net").mkdir(parents=True)
    (proc / "self").mkdir()
    (proc / "loadavg").write_text("0.52 0.58 0.59 1/201 4321\n")
    (proc / "uptime").write_text("3600.25 7000.00\n")
    (proc / "meminfo").write_text("MemTotal:        3885616 kB\nMemFree:          100000 kB\n"
                                  "MemAvailable:    2914212 kB\nSwapTotal:        102396 kB\n"
                                  "SwapFree:          92396 kB\n")
    (proc / "net/dev").write_text(
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
        "    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0\n"
        "  eth0: 123456789  98765    1    0    0     0          0         0  2345678   12345    2    0    0     0       0          0\n"
        " wlan0:     500       5    0    0    0     0          0         0      600       6    0    0    0     0       0          0\n")
    (proc / "self/status").write_text("Name:\tgateway\nVmRSS:\t   41000 kB\n")
    zone = sys / "class/thermal/thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "type").write_text("cpu-thermal\n")
    (zone / "temp").write_text("48312\n")
    if throttled is not None:
        fw = sys / "devices/platform/soc/soc:firmware"
        fw.mkdir(parents=True)
        (fw / "get_throttled").write_text(throttled + "\n")
    return proc, sys


def make_reader(tmp_path, store=None, **overrides):
    proc, sys = overrides.pop("paths", None) or fake_pi(tmp_path)
    config = host.Config(proc_path=str(proc), sys_path=str(sys), **overrides)
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    context = Context(config=None, data_dir=str(data),
                      components={"store": store or RecordingStore()})
    reader = host.create(config, context)
    reader._context = context
    return reader, context


def by_measurement(points):
    out = {}
    for p in points:
        out.setdefault(p.measurement, []).append(p)
    return out


def test_a_pi_reports_everything(tmp_path):
    reader, context = make_reader(tmp_path)
    points = by_measurement(asyncio.run(reader.collect_and_store()))
    assert points["host_system"][0].fields == {"load1": 0.52, "load5": 0.58, "load15": 0.59,
                                               "uptime_s": 3600.25}
    (thermal,) = points["host_thermal"]
    assert thermal.tags == {"zone": "cpu-thermal"} and thermal.fields == {"temperature_c": 48.312}
    power = points["host_power"][0].fields
    assert power["flags"] == 0x50005
    assert power["under_voltage"] and power["throttled"] and not power["freq_capped"]
    assert power["under_voltage_occurred"] and power["throttled_occurred"]
    assert not power["soft_temp_limit_occurred"]
    mem = points["host_memory"][0].fields
    assert mem["total_bytes"] == 3885616 * 1024 and mem["swap_used_bytes"] == 10000 * 1024
    assert mem["used_pct"] == pytest.approx(100 * (3885616 - 2914212) / 3885616)
    nets = {p.tags["interface"]: p.fields for p in points["host_net"]}
    assert set(nets) == {"eth0", "wlan0"}
    assert nets["eth0"]["rx_bytes"] == 123456789 and nets["eth0"]["tx_errors"] == 2
    assert [p.tags["path"] for p in points["host_disk"]] == ["/"]  # data dir: same filesystem
    (gw,) = points["gateway"]
    assert gw.fields["rss_bytes"] == 41000 * 1024
    assert gw.fields["store_bytes_written"] == 100
    rows = context.store.rows
    assert {r[0] for r in rows} == {"raw"} and len(rows) > 20
    assert context.store.waits == [False]  # nobody acknowledges host metrics: no sync wait
    assert reader.health()["healthy"]
    # Stored on whole seconds: the precision derived from the 30 s interval.
    assert all(r[4] % 10**9 == 0 for r in rows) and abs(rows[0][4] - time.time_ns()) < 2e9


def test_gateway_throughput_from_the_store_health(tmp_path):
    store = RecordingStore()
    reader, _ = make_reader(tmp_path, store=store)

    async def twice():
        first = await reader.collect_and_store()
        store.points_written, store.bytes_written = 5000, 80000
        await asyncio.sleep(0.2)
        return first, await reader.collect_and_store()

    first, second = asyncio.run(twice())
    gw1 = by_measurement(first)["gateway"][0].fields
    gw2 = by_measurement(second)["gateway"][0].fields
    assert "points_in_per_s" not in gw1  # no rate before a second sample
    assert 5000 / 30 < gw2["points_in_per_s"] <= 5000 / 0.2
    assert gw2["store_bytes_per_s"] == pytest.approx(gw2["points_in_per_s"] * 16)
    assert gw2["store_points_written"] == 5000


def test_board_without_power_flags_skips_them_quietly(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("PATH", str(tmp_path))  # no vcgencmd either
    reader, _ = make_reader(tmp_path, paths=fake_pi(tmp_path, throttled=None))
    points = by_measurement(reader.collect()[0])
    assert "host_power" not in points
    assert reader.health()["healthy"] and "throttl" not in caplog.text


def test_vcgencmd_is_the_fallback(tmp_path):
    tool = tmp_path / "vcgencmd"
    tool.write_text("#!/bin/sh\necho throttled=0x80008\n")
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    power = metrics.throttling(tmp_path / "nosys", vcgencmd=str(tool))
    assert power["soft_temp_limit"] and power["soft_temp_limit_occurred"] and not power["under_voltage"]


def test_broken_source_is_reported_and_the_rest_stored(tmp_path, caplog):
    proc, sys = fake_pi(tmp_path)
    (proc / "meminfo").write_text("garbage\n")
    (proc / "loadavg").unlink()
    reader, context = make_reader(tmp_path, paths=(proc, sys))
    points = by_measurement(asyncio.run(reader.collect_and_store()))
    assert "host_memory" not in points and "host_system" in points  # uptime still there
    health = reader.health()
    assert not health["healthy"]
    assert "no MemTotal" in health["sources"]["meminfo"]["last_error"]
    assert "loadavg" in health["sources"]["loadavg"]["last_error"]
    assert health["sources"]["net/dev"]["ok"]
    asyncio.run(reader.collect_and_store())
    assert caplog.text.count("cannot read meminfo") == 1  # logged once, not every interval
    (proc / "meminfo").write_text("MemTotal: 1000 kB\nMemAvailable: 500 kB\n")
    asyncio.run(reader.collect_and_store())
    assert reader.health()["sources"]["meminfo"]["ok"]


def test_interfaces_filter_and_extra_filesystems(tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    reader, _ = make_reader(tmp_path, interfaces=["lo", "wlan0"], filesystems=["/", str(other)])
    points = by_measurement(reader.collect()[0])
    assert {p.tags["interface"] for p in points["host_net"]} == {"lo", "wlan0"}
    assert points["host_disk"][0].fields["total_bytes"] > 0


def test_this_machine(tmp_path):
    context = Context(config=None, data_dir=str(tmp_path), components={"store": RecordingStore()})
    reader = host.create(host.Config(), context)
    reader._context = context
    points = by_measurement(asyncio.run(reader.collect_and_store()))
    for measurement in ("host_system", "host_memory", "host_disk", "gateway"):
        assert measurement in points
    assert points["gateway"][0].fields["rss_bytes"] > 1_000_000


def test_runs_as_a_component(tmp_path):
    reader, context = make_reader(tmp_path, interval=host.Config().interval.__class__(0.05, "50ms"))

    async def main():
        await reader.start(context)
        for _ in range(500):
            if reader.collections >= 3:
                break
            await asyncio.sleep(0.01)
        await reader.stop()
        await reader.stop()

    asyncio.run(main())
    assert reader.collections >= 3


def test_defaults_and_sample():
    assert [float(c.interval) for c in host.default_configs()] == [30.0]
    sample = pathlib.Path(host.__file__).with_name("sample.toml")
    (config,) = load_text(sample.read_text()).readers["host"]
    assert config.filesystems == ["/"] and config.interfaces == []
    assert sample.read_text() in sample.with_name("README.md").read_text()
    with pytest.raises(ConfigError, match=r"readers.host.proc_path: must be an absolute path, got 'proc'"):
        load_text('[readers.host]\nproc_path = "proc"\n')
    with pytest.raises(ConfigError, match=r"readers.host.interval: must be greater than zero"):
        load_text('[readers.host]\ninterval = "0s"\n')
