"""HIL scenario 4 on the booted image (the qemu rig on the image tests' machine): a device on the
host publishes QoS 1 at 100 messages/s to the gateway's port 1883, the machine is killed
mid-stream five times and booted again on the same card; every message the device saw
acknowledged is stored, nothing else is, and the root file system is clean after each boot.

It runs after the boot tests (file order) on the same machine: one build, one first boot. The
figures go to the test's output and to build/test-artifacts/image/hil-report.md.
"""

from __future__ import annotations

import time

import pytest

from hil.report import ScenarioResult, write_markdown
from hil.rigs.qemu import QemuRig
from hil.rigs.ssh import LOGIN_TIMEOUT_S
from hil.scenarios.test_power_cut_mqtt import power_cuts_during_lan_ingest
from imagetools import artifacts_dir

pytestmark = [pytest.mark.slow, pytest.mark.timeout(80 * 60)]

POWER_CUTS = 5


def test_power_cuts_during_lan_ingest_on_the_booted_image(guest, tmp_path, record_property):
    rig = QemuRig(tmp_path, machine=guest)
    result = ScenarioResult("power cuts during LAN ingest (scenario 4)")
    started = time.monotonic()
    try:
        power_cuts_during_lan_ingest(rig, result.figures, power_cuts=POWER_CUTS)
        result.outcome = "passed"
    except BaseException as e:
        result.outcome = "failed"
        result.evidence = f"{e}\n--- gateway log (tail) ---\n{rig.log_tail(60)}"
        raise
    finally:
        result.seconds = time.monotonic() - started
        write_markdown(artifacts_dir() / "hil-report.md", "qemu", [result])
        for name, value in result.figures.items():
            record_property(name, value)
        print(result.figures)


def test_a_later_boot_skips_cloud_init(guest):
    """Once provisioned, the card boots without cloud-init's four stages (its own marker,
    /etc/cloud/cloud-init.disabled, written by edge-gateway-provisioned.service)."""
    if guest.boots == 1:  # run on its own: no power cut has booted the machine again yet
        guest.wait_until_active("edge-gateway-provisioned.service")
        guest.kill()
        guest.start()
        guest.wait_for_login(LOGIN_TIMEOUT_S)
    status = guest.ssh("cloud-init status --long", check=False).stdout
    assert "disabled-by-marker-file" in status, status
    stages = ("cloud-init-local", "cloud-init", "cloud-config", "cloud-final")
    states = guest.ssh("systemctl is-active " + " ".join(f"{s}.service" for s in stages), check=False)
    assert states.stdout.split() == ["inactive"] * len(stages), states.stdout
    assert guest.ssh("systemctl is-active edge-gateway-reprovision.service").stdout.strip() == "active"
    guest.wait_until_active("gateway.service")
