"""Truncated, corrupt and hostile blocks raise CorruptBlock naming the problem, never crash."""

import random
import struct
from array import array

import pytest
from hypothesis import given, settings, strategies as st

from gateway import codec
from gateway.errors import CorruptBlock
from gateway._native import lib


def with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", lib.gw_crc32c(0, body, len(body)))


def sample_blocks():
    rnd = random.Random(3)
    n = 700
    ts = array("q", [1_700_000_000_000_000_000 + 15_000_000 * i + rnd.randint(-9999, 9999) for i in range(n)])
    return [
        codec.encode(ts, array("d", [round(20 + rnd.random() * 5, 1) for _ in range(n)])),
        codec.encode(ts, array("d", [rnd.random() for _ in range(n)])),
        codec.encode(ts, array("q", [rnd.randint(-10**6, 10**6) for _ in range(n)])),
        codec.encode(ts, array("Q", [rnd.getrandbits(64) for _ in range(n)])),
        codec.encode(ts, array("B", [rnd.random() < 0.2 for _ in range(n)]), type="bool"),
        codec.encode(ts, [rnd.choice(["ok", "warn", "fault", ""]) for _ in range(n)]),
    ]


BLOCKS = sample_blocks()


def test_corrupt_block_is_the_gateway_error():
    assert codec.CorruptBlock is CorruptBlock
    assert issubclass(CorruptBlock, ValueError)


@pytest.mark.parametrize("block", BLOCKS)
def test_every_truncation_is_rejected(block):
    for cut in range(len(block)):
        with pytest.raises(CorruptBlock):
            codec.decode(block[:cut])


@pytest.mark.parametrize("block", BLOCKS)
def test_every_flipped_byte_fails_the_checksum(block):
    for at in range(0, len(block), max(1, len(block) // 200)):
        bad = bytearray(block)
        bad[at] ^= 0x20
        with pytest.raises(CorruptBlock, match="checksum|magic"):
            codec.decode(bytes(bad))


@pytest.mark.parametrize("block", BLOCKS)
def test_hostile_bodies_with_valid_checksums_never_crash(block):
    rnd = random.Random(len(block))
    body = block[:-4]
    for _ in range(300):
        bad = bytearray(body)
        for _ in range(rnd.randint(1, 4)):
            bad[rnd.randrange(4, len(bad))] = rnd.randrange(256)
        try:
            codec.decode(with_crc(bytes(bad)))
        except CorruptBlock as e:
            assert str(e)   # names what is wrong


@pytest.mark.parametrize("body, message", [
    (b"XX\x01\x01\x00\x01" + bytes(8) + b"\x00", "magic"),
    (b"GB\x09\x01\x00\x01" + bytes(8) + b"\x00", "version"),
    (b"GB\x01\x09\x00\x01" + bytes(8) + b"\x00", "value type"),
    (b"GB\x01\x01\x02\x01" + bytes(8) + b"\x00", "flags"),
    (b"GB\x01\x01\x00\x00" + bytes(8) + b"\x00", "point count"),
    (b"GB\x01\x01\x00\xff\xff\xff\xff\x0f" + bytes(8) + b"\x00", "point count"),   # above the limit
    (b"GB\x01\x01\x00\x01" + bytes(5), "min_ts"),
    (b"GB\x01\x01\x00\x01" + b"\xff" * 7 + b"\x7f" + b"\x01", "time span"),
    (b"GB\x01\x01\x01\x03" + bytes(8) + b"\x03", "regular"),
    (b"GB\x01\x05\x01\x01" + bytes(8) + b"\x00\xff\xff\xff\xff\x0f", "string byte count"),
    (b"GB\x01\x01\x01\x01" + bytes(8) + b"\x00", "float column"),
    (b"GB\x01\x01\x01\x01" + bytes(8) + b"\x00\x07", "float column"),
    (b"GB\x01\x01\x01\x01" + bytes(8) + b"\x00\x00\x13", "decimal digits"),
    (b"GB\x01\x02\x01\x02" + bytes(8) + b"\x00\x3f", "integer column header"),
    (b"GB\x01\x02\x01\x01" + bytes(8) + b"\x00\x00\x00\x01\x00\x00", "left over"),
    (b"GB\x01\x02\x01\x01" + bytes(8) + b"\x00\x00\x00\x00\x00", "factor"),
    (b"GB\x01\x02\x01\x01" + bytes(8) + b"\x00\x0c\x00\x01\x02", "more sparse residuals"),
    (b"GB\x01\x02\x01\x02" + bytes(8) + b"\x01\x0c\x00\x01\x01\x05\x01", "sparse residual position"),
    (b"GB\x01\x02\x01\x02" + bytes(8) + b"\x01\x0c\x00\x01\x01\x00\x00", "sparse residual of zero"),
])
def test_hostile_headers_are_named(body, message):
    with pytest.raises(CorruptBlock, match=message):
        codec.decode(with_crc(body))


def test_huge_declared_strings_do_not_allocate():
    # one short string whose header claims 60 MiB: rejected before any big allocation
    block = codec.encode(array("q", [1]), ["x"])
    body = bytearray(block[:-4])
    # string byte count is the varint after span (1 byte each here): patch a bigger value in
    patched = body[:16] + bytes([0x80, 0x80, 0x80, 0x1e]) + body[17:]
    with pytest.raises(CorruptBlock):
        codec.decode(with_crc(bytes(patched)))


@settings(max_examples=400, deadline=None)
@given(st.binary(min_size=0, max_size=200))
def test_random_bytes_never_crash(data):
    for candidate in (data, b"GB\x01" + data, with_crc(b"GB\x01" + data[:1] + data[1:])):
        try:
            codec.decode(candidate)
        except CorruptBlock:
            pass


def test_decode_n_refuses_buffers_of_the_wrong_size():
    from gateway._native import ffi
    block = codec.encode(array("q", [1, 2, 3]), array("d", [1.0, 2.0, 3.0]))
    ts = ffi.new("int64_t[]", [7, 7, 7, 7])
    values = ffi.new("uint64_t[]", [7, 7, 7, 7])
    assert lib.gw_block_decode_n(block, len(block), 4, ts, values) == lib.GW_EINVAL
    assert list(ts) == [7, 7, 7, 7] and list(values) == [7, 7, 7, 7]
    strings = codec.encode(array("q", [1]), ["x"])
    assert lib.gw_block_decode_n(strings, len(strings), 1, ts, values) == lib.GW_EINVAL
    assert lib.gw_block_decode_n(block, len(block), 3, ts, values) == lib.GW_OK
    assert list(ts)[:3] == [1, 2, 3]


def test_decode_at_takes_addresses_and_refuses_the_wrong_size():
    block = codec.encode(array("q", [1, 2, 3]), array("d", [1.0, 2.0, 3.0]))
    ts, values = array("q", [7] * 4), array("d", [7.0] * 4)
    at = (ts.buffer_info()[0], values.buffer_info()[0])
    assert lib.gw_block_decode_at(block, len(block), 4, *at) == lib.GW_EINVAL
    assert list(ts) == [7] * 4 and list(values) == [7.0] * 4
    assert lib.gw_block_decode_at(block, len(block), 3, *at) == lib.GW_OK
    assert list(ts) == [1, 2, 3, 7] and list(values) == [1.0, 2.0, 3.0, 7.0]


def test_non_canonical_point_count_still_decodes_or_fails_cleanly():
    # n = 3 written as a three-byte varint: the Python shortcut declines, the C reader decides
    block = codec.encode(array("q", [1, 2, 3]), array("q", [5, 6, 7]))
    body = block[:5] + b"\x83\x80\x00" + block[6:-4]
    got_ts, got = codec.decode(with_crc(body))
    assert list(got_ts) == [1, 2, 3] and list(got) == [5, 6, 7]
