"""Writes vectors.json: blocks of format version 1 that tests/codec/test_vectors.py holds the
codec to, byte for byte; the worked example of docs/format/block.md is among them. Rerun it only
on purpose: when the encoder's choices change (then keep the old file's blocks decoding) or the
format version does."""

import json
import math
import pathlib
import struct
from array import array

from gateway import codec

T0 = 1_464_739_200_000_000_000   # 2016-06-01T00:00:00Z


def bits(values):
    return [f"{struct.unpack('<Q', struct.pack('<d', v))[0]:016x}" for v in values]


def noisy_temperature(n):
    """Tenths of a degree wandering by small steps (a fixed LCG, so the vector never changes)."""
    q, state, out = 215, 12345, []
    for _ in range(n):
        state = (state * 1103515245 + 12345) % 2**31
        q += (-1, 0, 0, 0, 0, 1, 2, -2)[state >> 28]
        out.append(q / 10)
    return out


CASES = [
    ("doc-example", "float", [1000, 2000, 3000], [21.5, 21.6, 21.6], None),
    ("temperature-regular", "float", [T0 + 60_000_000_000 * i for i in range(16)],
     [9.3, 9.3, 9.4, 9.4, 9.4, 9.5, 9.5, 9.5, 9.5, 9.5, 9.6, 9.6, 9.5, 9.4, 9.4, 9.3], 0.1),
    ("temperature-rans", "float", [T0 + 60_000_000_000 * i + (7_000_000_000 if i > 200 else 0)
                                    for i in range(300)], noisy_temperature(300), None),
    ("float-edges", "float", [T0 + i for i in range(8)],
     [0.0, -0.0, math.inf, -math.inf, 5e-324, 1.7976931348623157e308, 1 / 3, 21.5], None),
    ("float-random-order", "float", [T0 + 30, T0 + 10, T0 + 20, T0 - 5], [1.25, -1.5, 2.0, 1e-3], None),
    ("int-counter", "int", [T0 + 1_000_000_000 * i for i in range(10)], list(range(500, 600, 10)), None),
    ("int-extremes", "int", [T0, T0 + 1, T0 + 2, T0 + 3], [-(2**63), 2**63 - 1, 0, -1], None),
    ("uint-near-constant", "uint", [T0 + 15_000_000 * i + (i * 7919) % 1000 for i in range(12)],
     [42] * 10 + [43, 2**64 - 1], None),
    ("bool-runs", "bool", [T0 + 1000 * i for i in range(10)], [1, 1, 1, 0, 0, 1, 0, 0, 0, 0], None),
    ("string-dictionary", "string", [T0 + 1000 * i for i in range(6)],
     ["ok", "ok", "fault", "ok", "", "fault"], None),
]


def main():
    out = []
    for name, type_, ts, values, resolution in CASES:
        if type_ == "float":
            block = codec.encode(array("q", ts), array("d", values), resolution=resolution)
            shown = bits(values)
        elif type_ == "string":
            block = codec.encode(array("q", ts), values)
            shown = values
        else:
            block = codec.encode(array("q", ts), array({"int": "q", "uint": "Q", "bool": "B"}[type_], values),
                                 type=type_)
            shown = values
        out.append({"name": name, "type": type_, "timestamps": ts, "values": shown,
                    "resolution": resolution, "block": block.hex()})
    path = pathlib.Path(__file__).with_name("vectors.json")
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {len(out)} vectors to {path}")


if __name__ == "__main__":
    main()
