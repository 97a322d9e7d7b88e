"""The codec's C code built for the Pi (aarch64, the ARMv8 CRC32 and NEON paths: the block
checksum, the FMA quotient of decimal floats) and run under qemu's user-mode emulation: the
self-test round-trips every type, edge value and digit count bit for bit there too."""

import shutil
import subprocess

import pytest

from codec_support import CODEC_SOURCES, ROOT, compile_c

CROSS_CC = "aarch64-linux-gnu-gcc"   # gcc-aarch64-linux-gnu, libc6-dev-arm64-cross
QEMU = "qemu-aarch64-static"         # qemu-user-static


@pytest.mark.slow
def test_codec_self_test_passes_on_aarch64(tmp_path):
    missing = [tool for tool in (CROSS_CC, QEMU) if not shutil.which(tool)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (deps/debian-test.txt)")
    exe = compile_c(CROSS_CC, tmp_path / "codec_selftest",
                    [str(ROOT / "fuzz" / "codec_selftest.c"), str(ROOT / "fuzz" / "fuzz_block_decode.c"),
                     *CODEC_SOURCES, str(ROOT / "native" / "src" / "aggregate.c")],
                    ["-O2", "-static", "-march=armv8-a+crc", "-Wall", "-Wextra",
                     "-Wno-unused-parameter", "-Werror"])
    proc = subprocess.run([QEMU, str(exe)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    blocks = int(proc.stdout.split("codec self-test: ")[1].split()[0])
    assert blocks > 600   # every digit count of the decimal floats included
