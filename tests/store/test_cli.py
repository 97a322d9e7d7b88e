"""``gateway write`` and ``gateway export``: line protocol in and out, bit for bit, locally
and through a running daemon's control socket."""

from __future__ import annotations

import asyncio
import datetime
import math
import random
import struct
import threading
import time

import pytest

from gateway.cli import main
from gateway.lineprotocol import parse
from gateway.store import Store
from gateway.store.control import ControlServer

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


@pytest.fixture
def daemon_store(tmp_path):
    """A running store and its control socket (as in ``gateway run``) on their own thread
    and loop."""
    d = str(tmp_path / "data")
    loop = asyncio.new_event_loop()
    store = Store(d, small_config())
    control = ControlServer(store)
    ready = threading.Event()

    def serve():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(store.start())
        loop.run_until_complete(control.start())
        ready.set()
        loop.run_forever()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    assert ready.wait(30)
    yield d, store, loop
    asyncio.run_coroutine_threadsafe(control.stop(), loop).result(30)
    asyncio.run_coroutine_threadsafe(store.stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    t.join(30)
    loop.close()


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
