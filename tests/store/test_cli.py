"""``gateway write`` and ``gateway export``: line protocol in and out, bit for bit, locally
and through a running daemon's control socket."""

from __future__ import annotations

import asyncio
import datetime
import math
import random
import struct
import subprocess
import sys
import threading
import time

import pytest

from gateway.cli import main
from gateway.errors import StoreError
from gateway.lineprotocol import parse
from gateway.store import Store
from gateway.store.control import ControlClient, ControlServer
from gateway.store.transfer import parse_time

from store_support import small_config

# Two days ago on a whole second: inside the default buckets' retention (30 and 365 days).
T0 = (time.time_ns() // 10**9 - 2 * 86400) * 10**9
S0 = T0 // 10**9


def rfc3339(seconds: int) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def random_lines(n: int, seed: int) -> str:
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        ts = T0 + rng.randrange(0, 10**12)
        kind = rng.randrange(6)
        if kind == 0:
            x = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
            if not math.isfinite(x):
                x = -0.0
            value = repr(x)
        elif kind == 1:
            value = f"{round(rng.uniform(-50, 50), 2)}"
        elif kind == 2:
            value = f"{rng.randrange(-2**63, 2**63)}i"
        elif kind == 3:
            value = f"{rng.randrange(0, 2**64)}u"
        elif kind == 4:
            value = rng.choice(["true", "false", "t", "F"])
        else:
            value = '"' + rng.choice(["", "plain", 'quote \\" and \\\\ backslash', "é ü"]) + '"'
        lines.append(f"m{kind},host=h{i % 3},path=a\\ b f{kind}={value} {ts}")
    return "\n".join(lines) + "\n"


def points_of(text: bytes):
    out = {}
    for key, ts, value in parse(text).batch:
        out[(key, ts)] = struct.pack("<d", value) if isinstance(value, float) else value
    return out


def test_write_then_export_reproduces_every_point_bit_for_bit(tmp_path, capsysbinary):
    data = random_lines(3000, 1).encode()
    src = tmp_path / "in.lp"
    src.write_bytes(data)
    d = str(tmp_path / "data")
    assert main(["write", "--data-dir", d, "--bucket", "rollup", str(src)]) == 0
    capsysbinary.readouterr()
    assert main(["export", "--data-dir", d, "--bucket", "rollup"]) == 0
    out = capsysbinary.readouterr().out
    assert points_of(out) == points_of(data)  # same keys, times and values (last write wins)
    # filters
    assert main(["export", "--data-dir", d, "--bucket", "rollup", "--measurement", "m2",
                 "--start", str(T0 + 10**11), "--stop", rfc3339(S0 + 1000)]) == 0
    part = points_of(capsysbinary.readouterr().out)
    stop = T0 + 1000 * 10**9
    assert part == {k: v for k, v in points_of(data).items()
                    if k[0].startswith("m2,") and T0 + 10**11 <= k[1] < stop}


def test_bad_lines_are_reported_with_line_numbers_and_good_lines_kept(tmp_path, capsys):
    src = tmp_path / "in.lp"
    src.write_text(f"a v=1 {S0}\n"
                   f"a v= {S0 + 1}\n"
                   "\n"
                   f"a,t v=2 {S0 + 2}\n"
                   f"a v=3 {S0 + 3}\n")
    d = str(tmp_path / "data")
    assert main(["write", "--data-dir", d, "--precision", "s", str(src)]) == 1
    err = capsys.readouterr().err
    assert f"({src} line 2, column" in err and f"({src} line 4, column" in err
    assert "wrote 2 points from 2 lines" in err and "2 bad lines skipped" in err
    assert main(["export", "--data-dir", d]) == 0
    assert capsys.readouterr().out == f"a v=1 {T0}\na v=3 {T0 + 3 * 10**9}\n"


def test_points_older_than_the_retention_are_refused(tmp_path, capsys):
    src = tmp_path / "in.lp"
    src.write_text(f"a v=1 {S0}\nold v=1 {S0 - 40 * 86400}\n")   # raw keeps 30 days
    assert main(["write", "--data-dir", str(tmp_path / "d"), "--precision", "s", str(src)]) == 1
    err = capsys.readouterr().err
    assert "wrote 1 points" in err and "1 points refused" in err
    assert "older than the retention of bucket 'raw'" in err


def test_unknown_bucket_is_a_clear_error(tmp_path, capsys):
    src = tmp_path / "in.lp"
    src.write_text("a v=1 1\n")
    assert main(["write", "--data-dir", str(tmp_path / "d"), "--bucket", "nope", str(src)]) == 1
    assert "gateway: error: unknown bucket 'nope'" in capsys.readouterr().err
    assert main(["export", "--data-dir", str(tmp_path / "d"), "--start", "yesterday"]) == 1
    assert "invalid time 'yesterday'" in capsys.readouterr().err


class RunningStore:
    """An open store on its own thread and loop, as ``gateway run`` holds it; its control
    socket starts when :meth:`start_control` is called (a daemon's start takes a while)."""

    def __init__(self, data_dir: str) -> None:
        self.data_dir = data_dir
        self.loop = asyncio.new_event_loop()
        self.store = Store(data_dir, small_config())
        self.control = ControlServer(self.store)
        ready = threading.Event()

        def serve():
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.store.start())
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()
        assert ready.wait(30)

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def start_control(self) -> None:
        self.run(self.control.start())

    def stop(self) -> None:
        self.run(self.control.stop())
        self.run(self.store.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()


@pytest.fixture
def running_store(tmp_path):
    running = RunningStore(str(tmp_path / "data"))
    yield running
    running.stop()


@pytest.fixture
def daemon_store(running_store):
    """A running store and its control socket (as in ``gateway run``)."""
    running_store.start_control()
    return running_store.data_dir, running_store.store, running_store.loop


def test_write_and_export_go_through_the_running_daemon(tmp_path, daemon_store, capsysbinary):
    d, store, loop = daemon_store
    data = random_lines(500, 2).encode()
    src = tmp_path / "in.lp"
    src.write_bytes(data + b"bad line\n")
    assert main(["write", "--data-dir", d, str(src)]) == 1   # one bad line, the rest stored
    err = capsysbinary.readouterr().err.decode()
    assert "line 501, column" in err and "wrote 500 points" in err
    got = asyncio.run_coroutine_threadsafe(store.scan("raw"), loop).result(30)
    assert sum(len(c) for c in got) == len(points_of(data))
    assert main(["export", "--data-dir", d]) == 0
    assert points_of(capsysbinary.readouterr().out) == points_of(data)


@pytest.mark.parametrize("option, value", [("--start", "2300-01-01T00:00:00Z"),
                                           ("--stop", "-99999999999999999999"),
                                           ("--start", "1500-01-01T00:00:00Z")])
def test_times_out_of_range_are_a_clear_error(tmp_path, capsys, option, value):
    assert main(["export", "--data-dir", str(tmp_path / "d"), option, value]) == 1
    err = capsys.readouterr().err
    assert f"gateway: error: time {value!r} is out of range" in err
    assert "OverflowError" not in err


@pytest.mark.parametrize("text, ns", [
    ("1714564800000000123", 1714564800000000123),   # nanoseconds stay as given
    ("2024-05-01T12:00:00.123456789Z", 1714564800123456000),   # RFC 3339: to the microsecond
    ("2024-05-01T14:00:00.5+02:00", 1714564800500000000),
    ("2024-05-01T12:00:00", 1714564800000000000),   # no zone: UTC
    ("2024-05-01", 1714521600000000000),   # a date: midnight UTC
    ("1969-12-31T23:59:59.9999999Z", -1000),   # before the epoch: down to the microsecond
])
def test_time_bounds_parse_to_the_microsecond(text, ns):
    assert parse_time(text) == ns


@pytest.mark.parametrize("text", ["yesterday", "2024-05-01T12:00Z", "2024-13-01T00:00:00Z"])
def test_time_bounds_that_are_no_time_are_named(text):
    with pytest.raises(ValueError, match=f"invalid time {text!r}"):
        parse_time(text)


def test_the_daemon_refuses_times_out_of_range(daemon_store, capsysbinary):
    d, store, loop = daemon_store
    client = ControlClient(store.path)
    with pytest.raises(StoreError, match="the daemon refused: time start=1180591620717411303424 is out of range"):
        client.export("raw", 2**70, None, None, sys.stdout.buffer)
    assert capsysbinary.readouterr().out == b""


def test_an_export_failing_midway_through_the_daemon_exits_non_zero(tmp_path, daemon_store,
                                                                    capsysbinary, monkeypatch):
    d, store, loop = daemon_store
    src = tmp_path / "in.lp"
    src.write_text(f"a v=1 {T0}\nb v=2 {T0}\nc v=3 {T0}\n")
    assert main(["write", "--data-dir", d, str(src)]) == 0
    capsysbinary.readouterr()
    scan_chunks = store.scan_chunks

    async def failing_after_the_first_series(*args, **kwargs):
        async for chunk in scan_chunks(*args, **kwargs, chunk=1):
            yield chunk
            raise StoreError("cannot read ring file: Input/output error")

    # A read error after the first bytes went out (as a failing SD card gives).
    monkeypatch.setattr(store, "scan_chunks", failing_after_the_first_series)
    assert main(["export", "--data-dir", d]) == 1
    got = capsysbinary.readouterr()
    assert got.out == f"a v=1 {T0}\n".encode()   # what came before the error
    assert b"cannot read ring file: Input/output error" in got.err


def test_a_write_during_the_daemons_start_waits_for_its_control_socket(tmp_path, running_store):
    # The daemon holds the store (recovery runs) before its control socket answers.
    src = tmp_path / "in.lp"
    src.write_text(f"a v=1 {T0}\n")
    write = subprocess.Popen([sys.executable, "-m", "gateway", "write", "--data-dir",
                              running_store.data_dir, str(src)],
                             stderr=subprocess.PIPE, text=True)
    try:
        first = write.stderr.readline()
        assert "is in use by another process" in first and "waiting up to" in first, first
        running_store.start_control()
        rest = write.stderr.read()
        assert write.wait(60) == 0, first + rest
    finally:
        if write.poll() is None:
            write.kill()
            write.wait()
    assert "wrote 1 points" in rest
    assert running_store.run(running_store.store.last("a v")) == (T0, 1.0)
