"""A bounded libFuzzer run of the block decoder (fuzz/fuzz_block_decode.c), with ASan+UBSan.

CI runs it for FUZZ_SECONDS (default 45 s); run it longer by hand, see fuzz/README.md."""

import os
import re
import shutil
import subprocess

import pytest

from .conftest import CODEC_SOURCES, ROOT, compile_c

FUZZ_SECONDS = int(os.environ.get("FUZZ_SECONDS", "45"))


@pytest.mark.slow
def test_decoder_survives_fuzzing(tmp_path):
    if not shutil.which("clang"):
        pytest.skip("libFuzzer needs clang (deps/debian-test.txt)")
    exe = compile_c("clang", tmp_path / "fuzz_block_decode",
                    [str(ROOT / "fuzz" / "fuzz_block_decode.c"), *CODEC_SOURCES],
                    ["-O1", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all"])
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    proc = subprocess.run([str(exe), f"-max_total_time={FUZZ_SECONDS}", "-print_final_stats=1",
                           "-seed=1", f"-artifact_prefix={tmp_path}/", str(corpus)],
                          capture_output=True, text=True, timeout=FUZZ_SECONDS + 300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    execs = int(re.search(r"stat::number_of_executed_units:\s*(\d+)", proc.stderr).group(1))
    print(f"fuzz_block_decode: {execs} executions in {FUZZ_SECONDS} s, no crash")
    assert execs > 1000
