"""Helpers of the image tests: where the provisioning examples are, and the tools they need."""

from __future__ import annotations

import pathlib
import shutil

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
CLOUD_INIT = REPO / "cloud-init"
GROW_BY = 512 * 1024 * 1024     # the test card is larger than the image: the root must grow
# A gateway.toml with a misspelt key, as a user might write it: rejected, the gateway runs anyway.
BAD_CONFIG = '[gateway]\nlog_levle = "debug"\n'


def seed_dirs() -> list[pathlib.Path]:
    """Every seed folder in cloud-init/: the image's default seed and the examples."""
    return sorted(p.parent for p in CLOUD_INIT.glob("*/user-data"))


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (deps/debian-test.txt; `make test` installs it as root)")
    return path


def artifacts_dir() -> pathlib.Path:
    """Where the image tests keep logs worth reading after a failure (outside pytest's tmp)."""
    import os

    path = pathlib.Path(os.environ.get("GATEWAY_TEST_ARTIFACTS", REPO / "build" / "test-artifacts")) / "image"
    path.mkdir(parents=True, exist_ok=True)
    return path


def needed_later(request, fixture: str) -> bool:
    """Whether a test after this one in the session's order uses ``fixture`` (a test that
    leaves the shared machine off need not boot it again for nobody)."""
    items = request.session.items
    at = items.index(request.node)
    return any(fixture in item.fixturenames for item in items[at + 1:])
