"""The image and the booted machine the image tests share: one build, one first boot.

The image is built by image/build-image.sh (or taken from its cache when none of its inputs
changed), then booted in qemu-system-aarch64 (hil/rigs/virtual_machine.py, the machinery the
qemu HIL rig uses too) with a seed made for this run on its FAT partition: a user with a fresh
SSH key, and a gateway.toml with an error in it, which the gateway must report and survive.
Networking is qemu's user mode with the guest cut off from everything (restrict=on) except the
SSH port and the MQTT ports forwarded to free ports on 127.0.0.1.

The image is built in the background from the moment the session knows it will need it (the
rest of the suite runs meanwhile, on the other core), and the image tests run last: a cold build
(the root file system under qemu-user, about 20 minutes) then costs a run little more than the
image tests themselves.

The serial console log and the build log stay in build/test-artifacts/image/ when a test fails.
GATEWAY_TEST_IMAGE=path/to/edge-gateway-*.img(.zst) boots that image instead of building one.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest

from hil.rigs.virtual_machine import TOOLS, Card, ImageBuild, Machine, seed, unpack_image
from imagetools import BAD_CONFIG, GROW_BY, REPO, artifacts_dir, require_tool

FIRST_LOGIN_TIMEOUT_S = 15 * 60  # the SSH login usually works 60-90 s after power-on
#: The guest ports forwarded to the host: the gateway's device endpoint and mosquitto's LAN one.
GUEST_PORTS = (1883, 1884)


_build: ImageBuild | None = None   # the background build of this session, once started


def _needs_image(item) -> bool:
    return "image" in item.fixturenames


def pytest_collection_modifyitems(session, config, items):
    """The tests that boot the image run last, so the suite runs while the image builds."""
    items.sort(key=_needs_image)   # stable: each group keeps its order


def pytest_collection_finish(session):
    """Starts the image build when a selected test needs it (after deselection by -k/-m)."""
    global _build
    if _build is not None or os.environ.get("GATEWAY_TEST_IMAGE") or os.geteuid() != 0 \
            or session.config.option.collectonly or not any(map(_needs_image, session.items)):
        return
    subprocess.run(["bash", str(REPO / ".ci/apt-install"), str(REPO / "deps/debian-image.txt")],
                   check=True)
    _build = ImageBuild(pathlib.Path(tempfile.mkdtemp(prefix="gateway-image-")),
                        artifacts_dir() / "build.log")


def pytest_sessionfinish(session):
    """After the last test: the build stopped if it still runs, its image (1.6 GB) removed."""
    if _build is not None:
        _build.stop()
        shutil.rmtree(_build.dist, ignore_errors=True)


@pytest.fixture(scope="session")
def image(tmp_path_factory) -> pathlib.Path:
    """The raw image (decompressed from the build's .img.zst after its sha256 is checked)."""
    given = os.environ.get("GATEWAY_TEST_IMAGE")
    for tool in TOOLS:
        require_tool(tool)
    if given:
        return unpack_image(pathlib.Path(given), tmp_path_factory.mktemp("given"))
    if _build is None:
        pytest.skip("building the image needs root (mmdebstrap, chroot under qemu-user)")
    compressed = _build.result()
    raw = unpack_image(compressed, compressed.parent)
    compressed.unlink()
    _build.build_log.unlink()
    return raw


@pytest.fixture(scope="session")
def guest(image, tmp_path_factory, request):
    """The image booted once, its card attached so that the guest's flushes reach the file."""
    card = Card(image)
    card.grow(GROW_BY)
    serial_log = artifacts_dir() / "serial.log"
    serial_log.unlink(missing_ok=True)
    machine = Machine(card, tmp_path_factory.mktemp("boot"), guest_ports=GUEST_PORTS,
                      serial_log=serial_log)
    machine.install_seed(seed(machine.public_key, write_files=[
        {"path": "/etc/gateway/gateway.toml", "permissions": "0600", "content": BAD_CONFIG}]))
    failures_before = request.session.testsfailed
    machine.start()
    try:
        machine.wait_for_login(FIRST_LOGIN_TIMEOUT_S)
        yield machine
    finally:
        machine.power_off()
        card.remove()  # a temporary copy: 1.6 GB not worth keeping
        if request.session.testsfailed == failures_before:
            serial_log.unlink(missing_ok=True)
        else:
            print(f"serial console log kept: {serial_log}")
