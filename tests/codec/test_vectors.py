"""Known-answer vectors: format version 1 blocks, byte for byte (tests/data/codec/vectors.json)."""

import json
import pathlib
import struct
from array import array

import pytest

from gateway import codec
from gateway._native import lib

VECTORS = json.loads((pathlib.Path(__file__).parents[1] / "data" / "codec" / "vectors.json").read_text())
TYPECODES = {"int": "q", "uint": "Q", "bool": "B"}


def columns(vector):
    ts = array("q", vector["timestamps"])
    if vector["type"] == "float":
        return ts, array("d", b"".join(struct.pack("<Q", int(h, 16)) for h in vector["values"]))
    if vector["type"] == "string":
        return ts, vector["values"]
    return ts, array(TYPECODES[vector["type"]], vector["values"])


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_encoder_produces_the_vector(vector):
    ts, values = columns(vector)
    kind = None if vector["type"] in ("float", "string") else vector["type"]
    assert codec.encode(ts, values, resolution=vector["resolution"], type=kind).hex() == vector["block"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_decoder_reads_the_vector(vector):
    ts, values = columns(vector)
    got_ts, got = codec.decode(bytes.fromhex(vector["block"]))
    assert got_ts == ts
    if vector["type"] == "float":
        assert got.tobytes() == values.tobytes()
    else:
        assert list(got) == list(values)


def test_worked_example_of_the_spec():
    block = bytes.fromhex(VECTORS[0]["block"])
    assert block[:2] == b"GB" and block[2] == 1 and block[3] == codec.FLOAT
    info = codec.block_info(block)
    assert (info.count, info.min_ts, info.max_ts, info.flags) == (3, 1000, 3000, 1)


@pytest.mark.parametrize("data, crc", [
    (b"123456789", 0xE3069283),
    (bytes(32), 0x8A9136AA),             # RFC 3720 B.4 test patterns
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
])
def test_crc32c_check_values(data, crc):
    assert lib.gw_crc32c(0, data, len(data)) == crc


def test_crc32c_continues_across_pieces():
    data = bytes(range(256)) * 5
    whole = lib.gw_crc32c(0, data, len(data))
    for cut in (0, 1, 7, 8, 9, 300, len(data)):
        first = lib.gw_crc32c(0, data[:cut], cut)
        assert lib.gw_crc32c(first, data[cut:], len(data) - cut) == whole
