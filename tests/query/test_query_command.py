"""``gateway query``: on a stopped store and through a running daemon's control socket, with the
program as argument, file or stdin; a bad program is one clear error with its position."""

from __future__ import annotations

import io
import json
import sys
import time

import pytest

from gateway.cli import main
from query_support import store_config

# Two days ago on a whole hour: inside the default buckets' retention.
T0 = (time.time_ns() // 3600_000_000_000 - 48) * 3600_000_000_000
FLUX = ('from(bucket: "raw") |> range(start: -3d) |> filter(fn: (r) => r._measurement == "m") '
        '|> aggregateWindow(every: 1h, fn: count, createEmpty: false)')


def _lines() -> bytes:
    return "".join(f"m,host=h{i % 2} v={i}.5 {T0 + i * 60 * 10**9}\n" for i in range(240)).encode()


def _counts(out: bytes) -> dict:
    got = {}
    for line in out.decode().splitlines():
        row = json.loads(line)
        got[(row["host"], row["_time"])] = row["_value"]
    return got


def test_query_a_stopped_store_as_argument_file_and_stdin(tmp_path, capsysbinary, monkeypatch):
    d = str(tmp_path / "data")
    src = tmp_path / "in.lp"
    src.write_bytes(_lines())
    assert main(["write", "--data-dir", d, str(src)]) == 0
    capsysbinary.readouterr()
    assert main(["query", "--data-dir", d, "--format", "json", FLUX]) == 0
    counts = _counts(capsysbinary.readouterr().out)
    assert sum(counts.values()) == 240 and len(counts) == 8   # 4 hours x 2 hosts
    prog = tmp_path / "q.flux"
    prog.write_text(FLUX)
    assert main(["query", "--data-dir", d, "--format", "json", "-f", str(prog)]) == 0
    assert _counts(capsysbinary.readouterr().out) == counts
    monkeypatch.setattr(sys, "stdin", io.StringIO(FLUX))
    assert main(["query", "--data-dir", d, "--format", "csv"]) == 0
    csv = capsysbinary.readouterr().out.decode()
    assert csv.startswith("#group,false,false,true,true") and csv.count("\r\n,,") == 8


def test_bad_program_is_one_error_with_its_position(tmp_path, capsys):
    d = str(tmp_path / "data")
    assert main(["query", "--data-dir", d, 'from(bucket: "raw") |> range(start: -1h) |> nope()']) == 1
    err = capsys.readouterr().err
    assert err.startswith("gateway: error: undefined identifier 'nope' (line 1, column 45)")
    assert "^" in err and "Traceback" not in err


def test_to_is_refused_in_a_query(tmp_path, capsys):
    d = str(tmp_path / "data")
    src = tmp_path / "in.lp"
    src.write_bytes(_lines())
    assert main(["write", "--data-dir", d, str(src)]) == 0
    assert main(["query", "--data-dir", d, 'from(bucket: "raw") |> range(start: -1h) |> to(bucket: "rollup")']) == 1
    assert "a query is read-only" in capsys.readouterr().err


@pytest.fixture
def daemon(tmp_path, serve_store):
    d = str(tmp_path / "data")
    serve_store(d, store_config(head_points=64))
    return d


def test_query_goes_through_the_running_daemon(tmp_path, daemon, capsysbinary):
    src = tmp_path / "in.lp"
    src.write_bytes(_lines())
    assert main(["write", "--data-dir", daemon, str(src)]) == 0
    capsysbinary.readouterr()
    assert main(["query", "--data-dir", daemon, "--format", "json", FLUX]) == 0
    counts = _counts(capsysbinary.readouterr().out)
    assert sum(counts.values()) == 240
    assert main(["query", "--data-dir", daemon, 'from(bucket: "raw") |> range(start: -1h) |> nope()']) == 1
    err = capsysbinary.readouterr().err.decode()
    assert "undefined identifier 'nope' (line 1, column 45)" in err and "refused" not in err
