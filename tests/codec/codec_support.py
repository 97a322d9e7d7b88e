"""Builds of the codec's C code outside the Python module, for the sanitizer and fuzzing
harnesses (imported by module name: pytest puts this folder on sys.path)."""

import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CODEC_SOURCES = sorted(str(p) for p in (ROOT / "native" / "src").glob("codec*.c")) + \
    [str(ROOT / "native" / "src" / "crc32c.c")]
INCLUDE = str(ROOT / "native" / "include")


def compile_c(compiler: str, out: pathlib.Path, sources: list[str], flags: list[str]) -> pathlib.Path:
    cmd = [compiler, "-std=c99", "-g", f"-I{INCLUDE}", *flags, *sources, "-lm", "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    return out
