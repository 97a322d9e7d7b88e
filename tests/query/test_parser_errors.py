"""Parser and compile errors name line and column and show the line with a caret, exactly as
recorded in tests/data/query/parser_errors.golden (regenerate by hand when a message changes)."""

from __future__ import annotations

import pathlib

import pytest

from gateway.query import FluxError, compile_query

GOLDEN = pathlib.Path(__file__).parent.parent / "data" / "query" / "parser_errors.golden"


def _cases():
    text = GOLDEN.read_text()
    for block in text.split("===== source\n")[1:]:
        source, expected = block.split("\n===== error\n")
        yield pytest.param(source, expected.rstrip("\n"), id=source.splitlines()[0][:50] if source else "empty")


@pytest.mark.parametrize("source, expected", list(_cases()))
def test_error_message_is_golden(source, expected):
    with pytest.raises(FluxError) as info:
        compile_query(source, now=0)
    assert str(info.value) == expected
    assert info.value.line > 0 and info.value.column > 0


def test_caret_sits_under_the_column():
    with pytest.raises(FluxError) as info:
        compile_query('from(bucket: "raw")\n  |> range(start: -1h)\n  |> nope()', now=0)
    e = info.value
    lines = str(e).splitlines()
    assert (e.line, e.column) == (3, 6)
    assert lines[1] == "    |> nope()"
    assert lines[2].index("^") - 2 == e.column - 1


def test_the_golden_file_has_every_kind_of_error():
    assert len(list(_cases())) >= 20
