"""Window aggregation agrees with a plain reference on every window, sorted input or not."""

import math
from array import array

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from gateway.aggregate import window_aggregate, window_means, window_times


def reference(ts, values, every, offset):
    windows = {}
    for order, (t, v) in enumerate(sorted(zip(ts, values), key=lambda p: p[0])):
        if isinstance(v, float) and math.isnan(v):
            continue
        start = (t - offset) // every * every + offset
        windows.setdefault(start, []).append(float(v))
    rows = []
    for start in sorted(windows):
        vs = windows[start]
        rows.append((start, len(vs), math.fsum(vs), min(vs), max(vs), vs[0], vs[-1]))
    return rows


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-10**12, 10**12), st.one_of(st.floats(-1e6, 1e6), st.just(math.nan))),
                min_size=0, max_size=200),
       st.integers(1, 10**11), st.integers(-10**11, 10**11), st.booleans())
def test_windows_match_reference(points, every, offset, presort):
    if presort:
        points.sort(key=lambda p: p[0])
    ts = [p[0] for p in points]
    values = [p[1] for p in points]
    got = window_aggregate(array("q", ts), array("d", values), every, offset)
    want = reference(ts, values, every, offset % every)
    assert len(got) == len(want)
    for i, (start, count, total, lo, hi, first, last) in enumerate(want):
        assert got.start[i] == start and got.count[i] == count
        assert got.sum[i] == pytest.approx(total, rel=1e-9, abs=1e-6)
        assert got.mean[i] == pytest.approx(total / count, rel=1e-9, abs=1e-6)
        assert (got.min[i], got.max[i], got.first[i], got.last[i]) == (lo, hi, first, last)


def test_epoch_alignment_and_offset():
    hour = 3600 * 10**9
    ts = array("q", [0, hour - 1, hour, 2 * hour + 5])
    vals = array("q", [1, 2, 3, 4])
    got = window_aggregate(ts, vals, hour)
    assert list(got.start) == [0, hour, 2 * hour] and list(got.count) == [2, 1, 1]
    shifted = window_aggregate(ts, vals, hour, offset_ns=15 * 60 * 10**9)
    assert list(shifted.start) == [-45 * 60 * 10**9, 15 * 60 * 10**9, 75 * 60 * 10**9]
    assert list(shifted.sum) == [1.0, 5.0, 4.0]


def test_negative_timestamps_floor_to_their_window():
    got = window_aggregate(array("q", [-1, -10, -11]), array("d", [1.0, 2.0, 3.0]), 10)
    assert list(got.start) == [-20, -10] and list(got.count) == [1, 2]


def test_first_and_last_follow_time_not_input_order():
    got = window_aggregate(array("q", [50, 10, 30]), array("d", [5.0, 1.0, 3.0]), 100)
    assert (got.first[0], got.last[0]) == (1.0, 5.0)


def test_other_value_types():
    ts = np.array([0, 1, 2, 100], dtype=np.int64)
    ints = window_aggregate(ts, np.array([-5, 7, 1, 3], dtype=np.int64), 100)
    assert list(ints.min) == [-5.0, 3.0] and list(ints.sum) == [3.0, 3.0]
    uints = window_aggregate(ts, np.array([2**63, 1, 1, 0], dtype=np.uint64), 100)
    assert uints.max[0] == float(2**63)
    flags = window_aggregate(ts, np.array([True, False, True, True]), 100)
    assert list(flags.mean) == [pytest.approx(2 / 3), 1.0]


@pytest.mark.parametrize("every", [0, -5])
def test_bad_window_is_named(every):
    with pytest.raises(ValueError, match="every_ns"):
        window_aggregate(array("q", [1]), array("d", [1.0]), every)


def test_mismatched_columns_are_named():
    with pytest.raises(ValueError, match="2 timestamps but 1 values"):
        window_aggregate(array("q", [1, 2]), array("d", [1.0]), 10)
    with pytest.raises(TypeError, match="float64, int64"):
        window_aggregate(array("q", [1]), array("f", [1.0]), 10)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-2**63, 2**63 - 1), max_size=50), st.integers(-2**63, 2**63 - 1),
       st.integers(-2**63, 2**63 - 1), st.integers(-2**63, 2**63 - 1))
def test_window_times_shift_then_clamp(starts, shift, a, b):
    lo, hi = min(a, b), max(a, b)   # a range: start <= stop
    got = window_times(array("q", starts), shift, lo, hi)
    assert got.typecode == "q"
    assert list(got) == [min(max(max(min(s + shift, 2**63 - 1), -2**63), lo), hi) for s in starts]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(allow_nan=True, allow_infinity=True), st.integers(1, 2**53)),
                max_size=50))
def test_window_means_are_python_division(windows):
    got = window_means(array("d", [s for s, _ in windows]), array("Q", [c for _, c in windows]))
    want = [s / c for s, c in windows]
    assert got.tobytes() == array("d", want).tobytes()   # the same bits, NaN included


def test_window_means_refuses_other_columns():
    with pytest.raises(ValueError, match="array\\('d'\\) sums"):
        window_means(array("d", [1.0]), array("q", [1]))
    with pytest.raises(ValueError, match="one length"):
        window_means(array("d", [1.0]), array("Q", [1, 2]))
