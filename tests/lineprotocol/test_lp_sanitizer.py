"""The C parser and serializer under AddressSanitizer and UBSan, on vectors and mutations of them.

Builds ``lp_sanitize_harness.c`` with ``native/src/lineproto.c`` and ``batch.c``; the harness
parses every prefix of each input from a buffer of exactly that length, so an out-of-bounds
read, a leak, an overflow or any undefined behaviour ends the run with a report.
"""

from __future__ import annotations

import os
import pathlib
import random
import shutil
import subprocess

import pytest

from lp_support import load_vectors

ROOT = pathlib.Path(__file__).resolve().parents[2]
HARNESS = pathlib.Path(__file__).with_name("lp_sanitize_harness.c")
SPECIAL = b' ,="\\\n\r\t#_-.0123456789eiutfTF\xc3\xa9\xff\x00'


def corpus(seed: int = 20240601, mutations_per_input: int = 6) -> list[bytes]:
    """The vector inputs, each also mutated by deterministic random edits."""
    rng = random.Random(seed)
    base = [c["input"].encode() for c in load_vectors()]
    base += [
        b'm s="' + b"x" * 65536 + b'" 1\nm s="' + b"x" * 65537 + b'" 2\n',
        b"m,t=" + b"v" * 70000 + b" f=1\n",
        b"m," + b",".join(b"t%d=v" % k for k in range(300)) + b" " +
        b",".join(b"f%d=%di" % (k % 50, k) for k in range(200)) + b" 1\n",
        b"m f=" + b"1" * 400 + b"." + b"0" * 400 + b"e-300\n",
    ]
    out = list(base)
    for data in base:
        for _ in range(mutations_per_input):
            b = bytearray(data[:4096])
            for _ in range(rng.randint(1, 8)):
                op = rng.randrange(3)
                pos = rng.randint(0, len(b))
                if op == 0 and b:
                    b[min(pos, len(b) - 1)] = rng.choice(SPECIAL)
                elif op == 1:
                    b[pos:pos] = bytes(rng.choice(SPECIAL) for _ in range(rng.randint(1, 4)))
                elif b:
                    del b[pos:pos + rng.randint(1, 4)]
            out.append(bytes(b))
    return out


@pytest.mark.slow
def test_parser_is_clean_under_sanitizers(tmp_path):
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    exe = tmp_path / "harness"
    build = subprocess.run(
        [cc, "-std=c99", "-g", "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
         "-fno-omit-frame-pointer", "-D_POSIX_C_SOURCE=200809L", "-D_DEFAULT_SOURCE",
         f"-I{ROOT / 'native' / 'include'}", str(HARNESS),
         str(ROOT / "native" / "src" / "lineproto.c"), str(ROOT / "native" / "src" / "batch.c"),
         "-lm", "-o", str(exe)],
        capture_output=True, text=True)
    if build.returncode != 0 and "asan" in build.stderr.lower() and "cannot find" in build.stderr:
        pytest.skip(f"sanitizer runtime missing: {build.stderr.strip()[:200]}")
    assert build.returncode == 0, build.stderr

    files = []
    for k, data in enumerate(corpus()):
        path = tmp_path / f"in{k:04d}.lp"
        path.write_bytes(data)
        files.append(str(path))
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    run = subprocess.run([str(exe), *files], capture_output=True, text=True, env=env, timeout=900)
    assert run.returncode == 0, run.stderr[-4000:]
    assert "inputs checked" in run.stdout
