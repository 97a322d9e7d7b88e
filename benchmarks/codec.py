"""Block codec benchmark: size and speed on real sensor series, beside pcodec, zstd and Gorilla.

For each series in <repo>/../shared/data (CSV: time_ms,value) and for independent blocks of
128, 1024 and 8192 points and the whole series, prints bytes/point (timestamps + values) and
encode/decode points/s of:

  gateway   gateway.codec.encode/decode through the Python API, one call per block
  pcodec    pcodec's standalone API on int64 timestamps (ns) and the values scaled to integers
            by the series' resolution (two chunks per block)
  zstd-19   zstandard level 19 on the delta-encoded int64 timestamps and scaled values
  gorilla   a plain C Gorilla (benchmarks/gorilla.c: delta-of-delta + XOR floats) through cffi

All in the same run; speeds are the median of several repetitions (the machine may be shared).
Run: .venv/bin/python benchmarks/codec.py [--repeat N] [--series NAME ...]
"""

from __future__ import annotations

import argparse
import csv
import math
import pathlib
import statistics
import sys
import tempfile
import time
from array import array

import numpy as np

from gateway import codec

HERE = pathlib.Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
BLOCK_SIZES = [128, 1024, 8192, None]   # None: the whole series in one block
# Decimal resolution of each series (from the data set's README); unknown series: detected.
RESOLUTION = {"bsrn_temp": 0.1, "bsrn_rh": 0.1, "bsrn_press": 1.0, "bsrn_ghi": 1.0}


def load(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    with path.open() as f:
        rows = list(csv.reader(f))[1:]
    ts = np.array([int(r[0]) for r in rows], dtype=np.int64) * 1_000_000   # ms -> ns
    values = np.array([float(r[1]) for r in rows], dtype=np.float64)
    return ts, values


def blocks_of(n: int, size: int | None) -> list[tuple[int, int]]:
    size = size or n
    return [(i, min(i + size, n)) for i in range(0, n, size)]


def timed(fn, repeat: int) -> float:
    """Median seconds of fn() over repeat runs."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def build_gorilla():
    import cffi
    ffi = cffi.FFI()
    ffi.cdef("""
        size_t gorilla_bound(uint32_t n);
        size_t gorilla_encode(const int64_t *ts, const uint64_t *v, uint32_t n, uint8_t *out);
        void gorilla_decode(const uint8_t *in, size_t len, uint32_t n, int64_t *ts, uint64_t *v);
    """)
    tmp = tempfile.mkdtemp(prefix="gorilla-bench-")
    ffi.set_source("_gorilla_bench", '#include <stdint.h>\n#include <stddef.h>\n'
                   'size_t gorilla_bound(uint32_t n);\n'
                   'size_t gorilla_encode(const int64_t *ts, const uint64_t *v, uint32_t n, uint8_t *out);\n'
                   'void gorilla_decode(const uint8_t *in, size_t len, uint32_t n, int64_t *ts, uint64_t *v);',
                   sources=[str(HERE / "gorilla.c")], extra_compile_args=["-std=c99", "-O2"])
    import importlib.util
    import shutil
    try:
        lib_path = ffi.compile(tmpdir=tmp)
        spec = importlib.util.spec_from_file_location("_gorilla_bench", lib_path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)   # the library stays loaded once opened
    return mod.ffi, mod.lib


class Gateway:
    name = "gateway"

    def __init__(self, resolution):
        self.resolution = resolution

    def encode(self, ts, values):
        return [codec.encode(t, v, resolution=self.resolution) for t, v in zip(ts, values)]

    def decode(self, blobs):
        for b in blobs:
            codec.decode(b)

    def check(self, blobs, ts, values):
        for b, t, v in zip(blobs, ts, values):
            got_t, got_v = codec.decode(b)
            assert np.array_equal(np.frombuffer(got_t, np.int64), t)
            assert np.frombuffer(got_v, np.float64).tobytes() == v.tobytes()

    @staticmethod
    def size(blobs):
        return sum(len(b) for b in blobs)


class Pcodec:
    name = "pcodec"

    def __init__(self, resolution):
        from pcodec import ChunkConfig, standalone
        self.standalone, self.config, self.resolution = standalone, ChunkConfig(), resolution

    def prepare(self, values):
        return [np.round(v / self.resolution).astype(np.int64) for v in values]

    def encode(self, ts, scaled):
        c = self.standalone.simple_compress
        return [(c(t, self.config), c(q, self.config)) for t, q in zip(ts, scaled)]

    def decode(self, blobs):
        d = self.standalone.simple_decompress
        for bt, bv in blobs:
            d(bt)
            d(bv)

    def check(self, blobs, ts, scaled):
        d = self.standalone.simple_decompress
        for (bt, bv), t, q in zip(blobs, ts, scaled):
            assert np.array_equal(d(bt), t) and np.array_equal(d(bv), q)

    @staticmethod
    def size(blobs):
        return sum(len(a) + len(b) for a, b in blobs)


class ZstdDeltas:
    name = "zstd-19"

    def __init__(self, resolution):
        import zstandard
        self.cctx = zstandard.ZstdCompressor(level=19)
        self.dctx = zstandard.ZstdDecompressor()
        self.resolution = resolution

    def prepare(self, values):
        return [np.round(v / self.resolution).astype(np.int64) for v in values]

    def encode(self, ts, scaled):
        out = []
        for t, q in zip(ts, scaled):
            raw = np.concatenate([np.diff(t, prepend=0), np.diff(q, prepend=0)]).tobytes()
            out.append((len(t), self.cctx.compress(raw)))
        return out

    def decode(self, blobs):
        for n, blob in blobs:
            cols = np.frombuffer(self.dctx.decompress(blob), np.int64)
            np.cumsum(cols[:n])
            np.cumsum(cols[n:])

    def check(self, blobs, ts, scaled):
        for (n, blob), t, q in zip(blobs, ts, scaled):
            cols = np.frombuffer(self.dctx.decompress(blob), np.int64)
            assert np.array_equal(np.cumsum(cols[:n]), t) and np.array_equal(np.cumsum(cols[n:]), q)

    @staticmethod
    def size(blobs):
        return sum(len(b) for _, b in blobs)


class Gorilla:
    name = "gorilla"

    def __init__(self, built):
        self.ffi, self.lib = built

    def encode(self, ts, values):
        ffi, lib = self.ffi, self.lib
        out = []
        for t, v in zip(ts, values):
            buf = ffi.new("uint8_t[]", lib.gorilla_bound(len(t)))
            size = lib.gorilla_encode(ffi.from_buffer("int64_t[]", t), ffi.from_buffer("uint64_t[]", v),
                                      len(t), buf)
            out.append((len(t), ffi.buffer(buf, size)[:]))
        return out

    def decode(self, blobs):
        ffi, lib = self.ffi, self.lib
        for n, blob in blobs:
            t = np.empty(n, np.int64)
            v = np.empty(n, np.uint64)
            lib.gorilla_decode(blob, len(blob), n, ffi.from_buffer("int64_t[]", t),
                               ffi.from_buffer("uint64_t[]", v))

    def check(self, blobs, ts, values):
        ffi, lib = self.ffi, self.lib
        for (n, blob), t0, v0 in zip(blobs, ts, values):
            t = np.empty(n, np.int64)
            v = np.empty(n, np.float64)
            lib.gorilla_decode(blob, len(blob), n, ffi.from_buffer("int64_t[]", t),
                               ffi.from_buffer("uint64_t[]", v))
            assert np.array_equal(t, t0) and v.tobytes() == v0.tobytes()

    @staticmethod
    def size(blobs):
        return sum(len(b) for _, b in blobs)


def measure(coder, ts_blocks, value_blocks, n, repeat):
    inputs = coder.prepare(value_blocks) if hasattr(coder, "prepare") else value_blocks
    blobs = coder.encode(ts_blocks, inputs)
    coder.check(blobs, ts_blocks, inputs)
    enc = timed(lambda: coder.encode(ts_blocks, inputs), repeat)
    dec = timed(lambda: coder.decode(blobs), repeat)
    return coder.size(blobs) / n, n / enc, n / dec


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed repetitions (median)")
    parser.add_argument("--series", nargs="*", help="series names (default: every CSV)")
    parser.add_argument("--data", type=pathlib.Path, default=DATA)
    args = parser.parse_args(argv)
    paths = sorted(args.data.glob("*.csv"))
    if args.series:
        paths = [p for p in paths if p.stem in args.series]
    if not paths:
        print(f"no series found in {args.data}", file=sys.stderr)
        return 1
    gorilla = build_gorilla()
    print(f"block codec benchmark: {len(paths)} series from {args.data}, median of {args.repeat} runs")
    print("bytes/point = timestamps + values; speeds in million points/s; ratio = gateway / pcodec bytes\n")
    header = (f"{'series':<12}{'block':>7} | {'gateway B/pt':>12}{'enc':>7}{'dec':>7} | {'pcodec':>7}{'enc':>6}"
              f"{'dec':>7} | {'zstd-19':>7}{'enc':>6}{'dec':>6} | {'gorilla':>7}{'enc':>6}{'dec':>6} | {'ratio':>6}")
    print(header)
    print("-" * len(header))
    summary = {}
    for path in paths:
        ts, values = load(path)
        res = RESOLUTION.get(path.stem, 1.0)
        n = len(ts)
        for size in BLOCK_SIZES:
            spans = blocks_of(n, size)
            tb = [ts[a:b] for a, b in spans]
            vb = [values[a:b] for a, b in spans]
            row = {}
            row["gateway"] = measure(Gateway(None), tb, vb, n, args.repeat)
            row["pcodec"] = measure(Pcodec(res), tb, vb, n, max(1, args.repeat // 2))
            row["zstd"] = measure(ZstdDeltas(res), tb, vb, n, 1)
            row["gorilla"] = measure(Gorilla(gorilla), tb, vb, n, max(1, args.repeat // 2))
            ratio = row["gateway"][0] / row["pcodec"][0]
            summary[(path.stem, size)] = (row, ratio)
            g, p, z, go = row["gateway"], row["pcodec"], row["zstd"], row["gorilla"]
            label = str(size) if size else "whole"
            print(f"{path.stem:<12}{label:>7} | {g[0]:>12.3f}{g[1] / 1e6:>7.1f}{g[2] / 1e6:>7.1f} | "
                  f"{p[0]:>7.3f}{p[1] / 1e6:>6.1f}{p[2] / 1e6:>7.1f} | {z[0]:>7.3f}{z[1] / 1e6:>6.1f}"
                  f"{z[2] / 1e6:>6.1f} | {go[0]:>7.3f}{go[1] / 1e6:>6.1f}{go[2] / 1e6:>6.1f} | {ratio:>6.3f}")
        sys.stdout.flush()

    names = [p.stem for p in paths]
    at1024 = [summary[(s, 1024)][1] for s in names]
    whole = [summary[(s, None)][1] for s in names]
    geo = math.exp(sum(math.log(r) for r in whole) / len(whole))
    enc1024 = statistics.median(summary[(s, 1024)][0]["gateway"][1] for s in names)
    dec1024 = statistics.median(summary[(s, 1024)][0]["gateway"][2] for s in names)
    print("\ntargets (same run):")
    print(f"  bytes/point at 1024-point blocks vs pcodec <= 0.85 on every series: "
          f"worst {max(at1024):.3f} ({', '.join(f'{s} {r:.3f}' for s, r in zip(names, at1024))})"
          f" -> {'met' if max(at1024) <= 0.85 else 'NOT met'}")
    print(f"  whole series geometric mean vs pcodec <= 1.0: {geo:.3f} -> {'met' if geo <= 1.0 else 'NOT met'}")
    print(f"  encode at 1024-point blocks >= 60 M points/s: median {enc1024 / 1e6:.1f} M/s -> "
          f"{'met' if enc1024 >= 60e6 else 'NOT met'}")
    print(f"  decode at 1024-point blocks >= 230 M points/s: median {dec1024 / 1e6:.1f} M/s -> "
          f"{'met' if dec1024 >= 230e6 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
