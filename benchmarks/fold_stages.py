"""The C fold of the query benchmark's raw 10-minute mean, stage by stage (ns a point).

Loads the data of benchmarks/query.py (100 float series x 1 day at 1 Hz, 8.64 M points in
blocks of 1,024), lists its blocks from the block index, builds benchmarks/fold_stages.c with
the C core's sources and runs it: pread of the entries, the entry and block checksums, the
block decode and its value column's parts, and the whole fold (gw_fold_blocks, a fold per
series), each timed over all blocks in thread CPU time, the best of --repeat.

    python benchmarks/fold_stages.py [--repeat 9] [--cc cc]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sqlite3
import struct
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
NATIVE = HERE.parent / "native"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--cc", default=os.environ.get("CC", "cc"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = pathlib.Path(tmp, "day")
        subprocess.run([sys.executable, str(HERE / "query.py"), "--child", "generate", str(data), "1"],
                       check=True)
        store = data / "store"
        db = sqlite3.connect(store / "index.sqlite")
        (bucket,) = db.execute("SELECT id FROM buckets WHERE name = 'raw'").fetchone()
        rows = db.execute("SELECT series, seq, offset, length, min_ts, max_ts FROM blocks "
                          "WHERE bucket = ? ORDER BY series, min_ts, seq", (bucket,)).fetchall()
        db.close()
        refs = pathlib.Path(tmp, "refs")
        refs.write_bytes(b"".join(struct.pack("<6q", *r) for r in rows))
        exe = pathlib.Path(tmp, "fold_stages")
        subprocess.run([args.cc, "-std=c99", "-O2", "-D_POSIX_C_SOURCE=200809L", "-D_DEFAULT_SOURCE",
                        *(["-march=armv8-a+crc"] if os.uname().machine in ("aarch64", "arm64") else []),
                        f"-I{NATIVE / 'include'}", f"-I{NATIVE / 'src'}", str(HERE / "fold_stages.c"),
                        *sorted(str(p) for p in (NATIVE / "src").glob("*.c")), "-lm", "-o", str(exe)],
                       check=True)
        subprocess.run([str(exe), str(store / "buckets" / "raw" / "ring"), str(refs), str(args.repeat)],
                       check=True)
    print(f"(load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
