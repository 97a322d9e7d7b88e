"""Fixtures for the store tests: a store in a temporary data dir with small, fast settings."""

from __future__ import annotations

import pytest

from store_support import small_config


@pytest.fixture
def config():
    return small_config()


@pytest.fixture
def data_dir(tmp_path):
    return str(tmp_path / "data")
