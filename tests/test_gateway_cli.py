"""The gateway command line as a user meets it."""

import subprocess
import sys
import textwrap

import pytest

from gateway import __version__
from gateway.cli import main


def gateway(*args, **kw):
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True,
                          timeout=60, **kw)


def test_help_lists_commands_and_each_has_help():
    out = gateway("--help").stdout
    for name in ("run", "check-config", "version"):
        assert name in out
        assert gateway(name, "--help").returncode == 0


def test_version(capsys):
    assert main(["version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_check_config_prints_effective_config(tmp_path, capsys):
    f = tmp_path / "gw.toml"
    f.write_text('[store]\nwal_sync = "always"\n')
    assert main(["check-config", str(f)]) == 0
    out = capsys.readouterr().out
    assert 'wal_sync = "always"' in out and 'listen = "127.0.0.1:8080"' in out


def test_check_config_reports_every_error_with_file_and_line(tmp_path):
    f = tmp_path / "gw.toml"
    f.write_text(textwrap.dedent("""\
        [gateway]
        log_level = "chatty"
        [store]
        head_points = 3
        [htp]
        listen = "0.0.0.0:80"
    """))
    r = gateway("check-config", str(f))
    assert r.returncode == 1 and r.stdout == ""
    lines = r.stderr.splitlines()
    assert lines[0].startswith(f"{f}:2: gateway.log_level: must be one of")
    assert lines[1] == f"{f}:4: store.head_points: must be between 16 and 65536, got 3"
    assert lines[2] == f"{f}:5: htp: unknown key 'htp'; did you mean 'http'?"
    assert lines[3] == f"gateway: error: 3 problem(s) in {f}"
    assert "Traceback" not in r.stderr


def test_errors_are_one_line_and_tracebacks_only_with_debug(tmp_path):
    missing = tmp_path / "none.toml"
    r = gateway("run", "--config", str(missing), "--data-dir", str(tmp_path))
    assert r.returncode == 1
    assert r.stderr.strip().endswith(f"gateway: error: cannot read configuration {missing}: No such file or directory")
    assert "Traceback" not in r.stderr
    r = gateway("--debug", "run", "--config", str(missing), "--data-dir", str(tmp_path))
    assert r.returncode == 1 and "Traceback" in r.stderr


def test_unknown_command_is_a_usage_error():
    r = gateway("frobnicate")
    assert r.returncode == 2 and "invalid choice" in r.stderr


@pytest.mark.parametrize("argv", [["run", "--log-level", "debug", "--help"], ["--log-level", "debug", "version"]])
def test_log_level_before_or_after_the_command(argv):
    assert gateway(*argv).returncode == 0


@pytest.mark.parametrize("argv, message", [
    (["write", "--data-dir", "{tmp}/afile", "{tmp}/in.lp"],
     "--data-dir {tmp}/afile is a file, expected a directory"),
    (["export", "--data-dir", "{tmp}/afile/sub"],
     "--data-dir {tmp}/afile/sub lies under a file: {tmp}/afile is a file, expected a directory"),
    (["run", "--data-dir", "{tmp}/afile"], "--data-dir {tmp}/afile is a file, expected a directory"),
    (["write", "--data-dir", "{tmp}/data", "{tmp}/missing.lp"],
     "input file {tmp}/missing.lp does not exist"),
    (["write", "--data-dir", "{tmp}/data", "{tmp}"],
     "input {tmp} is a directory, expected a line protocol file"),
    (["check-config", "{tmp}"], "configuration {tmp} is a directory, expected a TOML file"),
])
def test_a_path_of_the_wrong_kind_is_named_with_what_was_expected(tmp_path, capsys, argv, message):
    (tmp_path / "afile").write_text("")
    (tmp_path / "in.lp").write_text("m f=1\n")
    assert main([a.format(tmp=tmp_path) for a in argv]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == \
        f"gateway: error: {message.format(tmp=tmp_path)}"


def test_check_config_catches_what_run_cannot_use(tmp_path):
    f = tmp_path / "gw.toml"
    f.write_text(textwrap.dedent("""\
        [store.buckets.raw]
        retention = "200000d"

        [[readers.mqtt]]
        bucket = "nowhere"
        [[readers.mqtt.subscriptions]]
        topic = "x"
        format = "value"
        measurement = "x"
    """))
    proc = gateway("check-config", str(f))
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[0] == (
        f"{f}:2: store.buckets.raw.retention: duration '200000d' is too long: at most 106751d "
        f"(what a 64-bit count of nanoseconds holds)")
    # checks across sections need the sections themselves valid
    f.write_text(f.read_text().replace("200000d", "36500d"))
    proc = gateway("check-config", str(f))
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[0] == (
        f"{f}:5: readers.mqtt[0].bucket: unknown bucket 'nowhere' (the store has raw, rollup; "
        f"add [store.buckets.nowhere] to create it)")
