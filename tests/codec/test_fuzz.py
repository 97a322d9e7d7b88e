"""Bounded libFuzzer runs, with ASan+UBSan, of the C core's code that reads outside bytes: the
block decoder (fuzz/fuzz_block_decode.c) and the flat-JSON converter (fuzz/fuzz_json_lines.c);
and of its encoders, given any values (fuzz/fuzz_encode.c).

CI runs each for FUZZ_SECONDS (default 45 s); run them longer by hand, see fuzz/README.md."""

import os
import re
import shutil
import subprocess

import pytest

from codec_support import CODEC_SOURCES, ROOT, compile_c

FUZZ_SECONDS = int(os.environ.get("FUZZ_SECONDS", "45"))


def _fuzz(tmp_path, name: str, sources: list[str], seeds: list[bytes] = ()) -> None:
    """Builds fuzz/<name>.c with the given core sources and runs it for FUZZ_SECONDS."""
    if not shutil.which("clang"):
        pytest.skip("libFuzzer needs clang (deps/debian-test.txt)")
    exe = compile_c("clang", tmp_path / name, [str(ROOT / "fuzz" / f"{name}.c"), *sources],
                    ["-O1", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all"])
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, seed in enumerate(seeds):
        (corpus / f"seed{i}").write_bytes(seed)
    proc = subprocess.run([str(exe), f"-max_total_time={FUZZ_SECONDS}", "-print_final_stats=1",
                           "-seed=1", f"-artifact_prefix={tmp_path}/", str(corpus)],
                          capture_output=True, text=True, timeout=FUZZ_SECONDS + 300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    execs = int(re.search(r"stat::number_of_executed_units:\s*(\d+)", proc.stderr).group(1))
    print(f"{name}: {execs} executions in {FUZZ_SECONDS} s, no crash")
    assert execs > 1000


@pytest.mark.slow
def test_decoder_survives_fuzzing(tmp_path):
    _fuzz(tmp_path, "fuzz_block_decode", CODEC_SOURCES)


@pytest.mark.slow
def test_json_converter_survives_fuzzing(tmp_path):
    src = ROOT / "native" / "src"
    # Seeds: the shapes sensors send, so the run starts inside the converter's grammar.
    _fuzz(tmp_path, "fuzz_json_lines", [str(src / f) for f in ("jsonlines.c", "lineproto.c", "batch.c")],
          [b'\xff{"ts": 1500, "room": "a b", "t": 21.5, "on": true, "note": "ok"}',
           b'\x05{"t":-1e-3,"kind":"pump","h":null}\x1e{"a":1}'])


@pytest.mark.slow
def test_encoders_survive_fuzzing(tmp_path):
    src = ROOT / "native" / "src"
    # Seeds: a float block with a declared resolution of 0.01 (its bits, little endian) and
    # four points, and the lines of a float series.
    _fuzz(tmp_path, "fuzz_encode",
          [*CODEC_SOURCES, *(str(src / f) for f in ("lineproto.c", "batch.c"))],
          [b"\x00" + bytes.fromhex("7b14ae47e17a843f") + bytes(16) * 4,
           b"\x01weather,site=a temperature\x00" + bytes(32)])
