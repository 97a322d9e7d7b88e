"""Fixtures of the codec tests; the C build helpers are in codec_support.py."""

import shutil

import pytest


@pytest.fixture(scope="session")
def c_compiler():
    for name in ("clang", "gcc", "cc"):
        if shutil.which(name):
            return name
    pytest.skip("no C compiler (install clang from deps/debian-test.txt)")
