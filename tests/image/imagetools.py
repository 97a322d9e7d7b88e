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


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for qemu's forwarded SSH port)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def artifacts_dir() -> pathlib.Path:
    """Where the image tests keep logs worth reading after a failure (outside pytest's tmp)."""
    import os

    path = pathlib.Path(os.environ.get("GATEWAY_TEST_ARTIFACTS", REPO / "build" / "test-artifacts")) / "image"
    path.mkdir(parents=True, exist_ok=True)
    return path
