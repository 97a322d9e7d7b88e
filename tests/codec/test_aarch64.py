"""The codec's C code built for the Pi (aarch64, the ARMv8 CRC32 and NEON paths: the block
checksum, the FMA quotient of decimal floats) and run under qemu's user-mode emulation: the
self-test (fuzz/codec_selftest.c) round-trips every type, edge value and digit count bit for
bit there too, and checks the CRC32C against its bit-by-bit definition."""

import shutil
import subprocess

import pytest

from codec_support import CODEC_SOURCES, ROOT, compile_c

CROSS_CC = "aarch64-linux-gnu-gcc"   # gcc-aarch64-linux-gnu, libc6-dev-arm64-cross
QEMU = "qemu-aarch64-static"         # qemu-user-static


def _self_test(tmp_path, march: str, *args: str) -> str:
    missing = [tool for tool in (CROSS_CC, QEMU) if not shutil.which(tool)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (deps/debian-test.txt)")
    exe = compile_c(CROSS_CC, tmp_path / f"codec_selftest-{march}",
                    [str(ROOT / "fuzz" / "codec_selftest.c"), str(ROOT / "fuzz" / "fuzz_block_decode.c"),
                     *CODEC_SOURCES, str(ROOT / "native" / "src" / "aggregate.c")],
                    ["-O2", "-static", f"-march={march}", "-Wall", "-Wextra",
                     "-Wno-unused-parameter", "-Werror"])
    proc = subprocess.run([QEMU, str(exe), *args], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout


@pytest.mark.slow
def test_codec_self_test_passes_on_aarch64(tmp_path):
    """As the Pi's build has it (native/build_native.py): with the CRC32 instructions."""
    out = _self_test(tmp_path, "armv8-a+crc")
    blocks = int(out.split("codec self-test: ")[1].split()[0])
    assert blocks > 600   # every digit count of the decimal floats included


@pytest.mark.slow
def test_crc32c_tables_agree_with_the_definition_on_aarch64(tmp_path):
    """Built without the CRC32 extension the checksum takes its table path: it, the ARMv8 and
    the SSE4.2 instructions (the self-test under the sanitizers) all give the bit-by-bit
    definition's CRC32C."""
    assert "CRC32C agrees with its definition" in _self_test(tmp_path, "armv8-a", "--crc")
