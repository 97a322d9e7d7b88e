"""Known-answer vectors (tests/data/lineprotocol/vectors.json): the spec's examples and our rules."""

from __future__ import annotations

import pytest

from gateway.lineprotocol import parse

from lp_support import load_vectors, same_value, type_name

CASES = load_vectors()


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_vector(case):
    result = parse(case["input"].encode(), precision=case["precision"],
                   default_time_ns=case["default_time_ns"])
    got = [(key, type_name(value), value, ts) for key, ts, value in result.batch]
    want = [tuple(p) for p in case["points"]]
    assert [(k, t, ts) for k, t, _, ts in got] == [(k, t, ts) for k, t, _, ts in want]
    for (_, _, g, _), (_, _, w, _) in zip(got, want):
        assert same_value(g, w), (g, w)
    assert [(e.line, e.column, str(e).split(": ", 1)[1]) for e in result.errors] == \
        [tuple(e) for e in case["errors"]]
    assert result.bad_lines == len(case["errors"])
    assert result.points == len(want)
