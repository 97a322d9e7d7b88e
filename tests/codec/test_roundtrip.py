"""Blocks give back exactly what went in: every type, every edge value, any timestamp order."""

import math
import struct
from array import array

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from gateway import codec

INT64 = st.integers(-(2**63), 2**63 - 1)
UINT64 = st.integers(0, 2**64 - 1)
EDGE_FLOATS = [0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, -5e-324, 2.2250738585072014e-308,
               1.7976931348623157e308, 0.1, 0.30000000000000004, 1e15, -21.5, 2.0**53, 2.0**51 + 0.5]
NAN_PAYLOADS = [0x7FF8000000000001, 0xFFF8000000000000, 0x7FF0000000000001, 0xFFFFFFFFFFFFFFFF]


def float_bits(values):
    return array("d", values).tobytes()


def timestamps_strategy(min_size=1, max_size=300):
    base = st.integers(-(2**62), 2**62)
    regular = st.builds(lambda t0, step, n: [t0 + step * i for i in range(n)],
                        base, st.integers(0, 10**12), st.integers(min_size, max_size))
    jittered = st.builds(lambda t0, n, jit: [t0 + 15_000_000 * i + j for i, j in enumerate(jit[:n])],
                         base, st.integers(min_size, max_size),
                         st.lists(st.integers(-2_000_000, 2_000_000), min_size=max_size, max_size=max_size))
    anything = st.lists(INT64, min_size=min_size, max_size=max_size)
    return st.one_of(regular, jittered, anything)


@st.composite
def float_series(draw):
    ts = draw(timestamps_strategy())
    n = len(ts)
    kind = draw(st.sampled_from(["decimal", "edge", "any", "mixed"]))
    if kind == "decimal":
        digits = draw(st.integers(0, 6))
        values = [q / 10**digits for q in draw(st.lists(st.integers(-10**9, 10**9), min_size=n, max_size=n))]
    elif kind == "edge":
        values = draw(st.lists(st.sampled_from(EDGE_FLOATS), min_size=n, max_size=n))
    elif kind == "any":
        values = draw(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=n, max_size=n))
    else:
        values = [round(20 + math.sin(i / 9) * 3, 1) for i in range(n)]
        for i in draw(st.lists(st.integers(0, n - 1), max_size=5)):
            values[i] = draw(st.sampled_from(EDGE_FLOATS))
    return ts, values


@settings(max_examples=300, deadline=None)
@given(float_series(), st.sampled_from([None, 0.1, 0.01, 0.5, 1.0, 1e-9]))
def test_floats_round_trip_bit_exact(series, resolution):
    ts, values = series
    block = codec.encode(array("q", ts), array("d", values), resolution=resolution)
    got_ts, got = codec.decode(block)
    assert list(got_ts) == ts
    assert got.typecode == "d" and got.tobytes() == float_bits(values)


def test_nan_payloads_and_signed_zero_survive():
    raw = array("Q", NAN_PAYLOADS + [0x8000000000000000, 1, 0x000FFFFFFFFFFFFF])
    values = array("d", raw.tobytes())
    block = codec.encode(array("q", range(len(values))), values)
    assert codec.decode(block)[1].tobytes() == raw.tobytes()


@settings(max_examples=200, deadline=None)
@given(timestamps_strategy(), st.data())
def test_ints_round_trip(ts, data):
    n = len(ts)
    shape = data.draw(st.sampled_from(["any", "counter", "near_constant", "small"]))
    if shape == "any":
        values = data.draw(st.lists(INT64, min_size=n, max_size=n))
    elif shape == "counter":
        start, step = data.draw(INT64), data.draw(st.integers(0, 1000))
        values = [((start + step * i + 2**63) % 2**64) - 2**63 for i in range(n)]
    elif shape == "near_constant":
        values = [data.draw(st.sampled_from([7, 7, 7, 7, 8, -(2**63)])) for _ in range(n)]
    else:
        values = data.draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n))
    got_ts, got = codec.decode(codec.encode(array("q", ts), array("q", values)))
    assert list(got_ts) == ts and got.typecode == "q" and list(got) == values


@settings(max_examples=150, deadline=None)
@given(st.lists(UINT64, min_size=1, max_size=300))
def test_uints_round_trip(values):
    ts = list(range(len(values)))
    got_ts, got = codec.decode(codec.encode(array("q", ts), array("Q", values)))
    assert got.typecode == "Q" and list(got) == values


@settings(max_examples=150, deadline=None)
@given(timestamps_strategy(), st.data())
def test_bools_round_trip(ts, data):
    values = data.draw(st.lists(st.booleans(), min_size=len(ts), max_size=len(ts)))
    block = codec.encode(array("q", ts), array("B", values), type="bool")
    got_ts, got = codec.decode(block)
    assert list(got_ts) == ts and got.typecode == "B" and [bool(v) for v in got] == values


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=20), st.binary(max_size=20),
                          st.sampled_from(["ok", "fault", ""])), min_size=1, max_size=200))
def test_strings_round_trip(values):
    ts = array("q", range(0, 1000 * len(values), 1000))
    got_ts, got = codec.decode(codec.encode(ts, values))
    expected = [v if isinstance(v, str) else v.decode("utf-8", "surrogateescape") for v in values]
    assert list(got_ts) == list(ts) and got == expected
    # what comes back re-encodes to the same bytes
    assert [g.encode("utf-8", "surrogateescape") for g in got] == \
        [v.encode("utf-8", "surrogateescape") if isinstance(v, str) else v for v in values]


def test_numpy_columns_in_and_out():
    ts = np.arange(1000, dtype=np.int64) * 1_000_000_000
    values = np.round(np.sin(np.arange(1000) / 30) * 100, 2)
    got_ts, got = codec.decode(codec.encode(ts, values))
    assert np.array_equal(np.frombuffer(got_ts, np.int64), ts)
    assert np.frombuffer(got, np.float64).tobytes() == values.tobytes()
    ok = np.array([True, False, True])
    assert list(codec.decode(codec.encode(ts[:3], ok))[1]) == [1, 0, 1]
    u = np.array([1, 2**64 - 1], dtype=np.uint64)
    assert list(codec.decode(codec.encode(ts[:2], u))[1]) == [1, 2**64 - 1]


def test_block_accepts_bytes_bytearray_memoryview():
    block = codec.encode(array("q", [1, 2, 3]), array("d", [1.5, 2.5, 3.5]))
    for form in (block, bytearray(block), memoryview(block), np.frombuffer(block, np.uint8)):
        assert list(codec.decode(form)[1]) == [1.5, 2.5, 3.5]


def test_block_info_reports_header():
    ts = array("q", [30, 10, 20])
    info = codec.block_info(codec.encode(ts, array("q", [1, 2, 3])))
    assert (info.type, info.count, info.min_ts, info.max_ts, info.version) == (codec.INT, 3, 10, 30, 1)
    sinfo = codec.block_info(codec.encode(ts, ["ab", "c", ""]))
    assert sinfo.type == codec.STRING and sinfo.string_bytes == 3


def test_regular_timestamps_and_constant_values_cost_next_to_nothing():
    n = 1024
    ts = array("q", range(1_700_000_000_000_000_000, 1_700_000_000_000_000_000 + n * 10**9, 10**9))
    block = codec.encode(ts, array("q", [5] * n))
    assert len(block) < 40
    counter = codec.encode(ts, array("q", range(100, 100 + 3 * n, 3)))
    assert len(counter) < 40


def test_jittered_timestamps_are_cheap():
    import random
    rnd = random.Random(7)
    n = 1024
    t, ts = 1_700_000_000_000_000_000, []
    for _ in range(n):
        t += 15_000_000 + rnd.randint(-500_000, 500_000)
        ts.append(t)
    block = codec.encode(array("q", ts), array("q", [0] * n))
    # +-0.5 ms jitter in ns is about 20 bits of entropy per point, far below 64
    assert len(block) / n < 3.2


def test_decimal_detection_beats_raw_floats():
    values = array("d", [round(21.0 + (i % 37) * 0.1, 1) for i in range(1024)])
    block = codec.encode(array("q", range(1024)), values)
    assert len(block) < 1024 * 1.0   # under one byte per point; raw floats are eight


@pytest.mark.parametrize("bad, message", [
    (lambda: codec.encode(array("q", []), array("d", [])), "at least one point"),
    (lambda: codec.encode(array("q", [1, 2]), array("d", [1.0])), "2 timestamps but 1 values"),
    (lambda: codec.encode(array("q", [1]), array("d", [1.0]), resolution=0), "resolution"),
    (lambda: codec.encode(array("q", [1]), array("d", [1.0]), resolution=math.nan), "resolution"),
    (lambda: codec.encode(array("q", [1]), array("q", [1]), resolution=0.1), "float values only"),
    (lambda: codec.encode(array("d", [1.0]), array("d", [1.0])), "signed 64-bit"),
    (lambda: codec.encode(array("q", [1]), array("f", [1.0])), "value type"),
    (lambda: codec.encode(array("q", [1]), [1.0]), "strings"),
    (lambda: codec.encode(array("q", [1]), [3], type="pressure"), "unknown value type"),
    (lambda: codec.encode(array("q", [1, 2]), ["a", 3]), "strings"),
])
def test_bad_encode_arguments_are_named(bad, message):
    with pytest.raises((ValueError, TypeError), match=message):
        bad()


def test_lists_with_a_type_are_accepted():
    got = codec.decode(codec.encode([1, 2], [1.5, 2.5], type="float"))
    assert list(got[0]) == [1, 2] and list(got[1]) == [1.5, 2.5]


def _float_scheme(block: bytes) -> tuple[int, int, int]:
    """(scheme, digits, exceptions) of a regular float block's value column."""
    pos = 4
    for _ in range(2):                          # flags, n
        while block[pos] & 0x80:
            pos += 1
        pos += 1
    pos += 8                                    # min_ts
    while block[pos] & 0x80:                    # span
        pos += 1
    pos += 1
    return block[pos], block[pos + 1], block[pos + 2]


@pytest.mark.parametrize("digits", range(19))
def test_decimal_values_decode_to_the_bits_of_the_division(digits):
    """The decoder turns q into q / 10^k without dividing (multiply-adds on machines with
    FMA); every value must have the bits of the correctly rounded division, for every k,
    |q| up to 2^51, and block lengths that leave every kind of vector tail."""
    rng = np.random.default_rng(digits)
    limit = 2**51 - 1
    q = np.concatenate([
        rng.integers(-limit, limit, 4093, dtype=np.int64),
        rng.integers(-(2**20), 2**20, 4093, dtype=np.int64),
        np.array([0, 1, -1, limit, -limit, 5**min(digits, 21), 10**min(digits, 15) + 1],
                 dtype=np.int64)])
    for part in (q[:4093], q[4093:8186], q[8186:], q):
        values = part.astype(np.float64) / 10.0**digits      # IEEE division, correctly rounded
        block = codec.encode(np.arange(len(part), dtype=np.int64), values,
                             resolution=10.0**-digits)
        scheme, _, exceptions = _float_scheme(block)
        assert (scheme, exceptions) == (0, 0)                # decimal, every value from q
        _, got = codec.decode(block)
        assert np.asarray(got).view(np.uint64).tolist() == values.view(np.uint64).tolist()
