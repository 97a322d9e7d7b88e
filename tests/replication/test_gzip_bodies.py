"""gzip for request bodies: libdeflate (Debian's libdeflate0, in deps/debian-run.txt) and the
zlib fallback both make one gzip member that reads back to the body, at every level."""

from __future__ import annotations

import gzip
import os

import pytest
from hypothesis import given, settings, strategies as st

from gateway.replication import gzip_bodies
from gateway.replication.gzip_bodies import gzip_compress

_LINES = b"".join(b"m,sensor=s%03d v=%d.%02d %d\n" % (i % 120, i % 40, i % 100, 1_700_000_000 + i)
                  for i in range(20_000))


def test_libdeflate_is_the_backend_where_debian_installed_it():
    assert gzip_bodies.BACKEND == "libdeflate"


@pytest.mark.parametrize("use_libdeflate", [True, False])
@pytest.mark.parametrize("level", range(1, 10))
def test_bodies_read_back_at_every_level(level, use_libdeflate):
    for data in (b"", b"x", _LINES, os.urandom(70_000)):
        wire = gzip_compress(data, level, use_libdeflate=use_libdeflate)
        assert wire[:2] == b"\x1f\x8b" and gzip.decompress(wire) == data
    assert len(gzip_compress(_LINES, level, use_libdeflate=use_libdeflate)) < len(_LINES) / 4


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=5000), st.integers(1, 9), st.booleans())
def test_any_bytes_read_back(data, level, use_libdeflate):
    assert gzip.decompress(gzip_compress(data, level, use_libdeflate=use_libdeflate)) == data


@pytest.mark.parametrize("level", [0, 10, -1])
def test_levels_outside_1_to_9_are_refused(level):
    with pytest.raises(ValueError, match="gzip level must be 1 to 9"):
        gzip_compress(b"data", level)
