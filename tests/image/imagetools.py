"""Helpers of the image tests: where the provisioning examples are, and the tools they need."""

from __future__ import annotations

import pathlib
import shutil

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
CLOUD_INIT = REPO / "cloud-init"


def seed_dirs() -> list[pathlib.Path]:
    """Every seed folder in cloud-init/: the image's default seed and the examples."""
    return sorted(p.parent for p in CLOUD_INIT.glob("*/user-data"))


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (deps/debian-test.txt; `make test` installs it as root)")
    return path
