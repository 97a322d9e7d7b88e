"""The codec's and the aggregation kernel's C code under AddressSanitizer and UBSan.

fuzz/codec_selftest.c checks CRC32C against its definition, round-trips every type and edge
value, feeds the decoder every truncation and thousands of hostile bodies, and aggregates
sorted and shuffled columns; any out-of-bounds access, leak or undefined behaviour aborts the
run."""

import os
import subprocess

import pytest

from codec_support import CODEC_SOURCES, ROOT, compile_c


@pytest.mark.slow
def test_codec_clean_under_asan_and_ubsan(c_compiler, tmp_path):
    exe = compile_c(c_compiler, tmp_path / "codec_selftest",
                    [str(ROOT / "fuzz" / "codec_selftest.c"), str(ROOT / "fuzz" / "fuzz_block_decode.c"),
                     *CODEC_SOURCES, str(ROOT / "native" / "src" / "aggregate.c")],
                    ["-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                     "-fno-omit-frame-pointer"])
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    proc = subprocess.run([str(exe)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "blocks round-tripped" in proc.stdout
    blocks = int(proc.stdout.split("codec self-test: ")[1].split()[0])
    assert blocks > 400
