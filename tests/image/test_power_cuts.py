"""HIL scenarios 4 and 6 on the booted image (the qemu rig on the image tests' machine).

Scenario 4: a device on the host publishes QoS 1 at 100 messages/s to the gateway's port 1883,
the machine is killed mid-stream five times and booted again on the same card; every message the
device saw acknowledged is stored, nothing else is, and the root file system is clean after each
boot. Scenario 6: the machine is powered on with its clock in the past (fake-hwclock's and
timesyncd's saves and the virt machine's real-time clock), takes LAN messages and host readings
through a restart and a power cut, then its clock is stepped over SSH as NTP does; what the
gateway timed is stored at its real times, and the status API said "not synchronised" meanwhile.
Last the ssh rig, as a real Pi is driven: the same scenario with one cut, over SSH to the
machine's forwarded port, its power a command (a script that kills qemu and starts it again).

It runs after the boot tests (file order) on the same machine: one build, one first boot. The
figures go to the tests' output and to build/test-artifacts/image/hil-report-{qemu,ssh}.md.
"""

from __future__ import annotations

import time

import pytest

from hil.report import ScenarioResult, write_markdown
from hil.rigs import open_rig
from hil.rigs.qemu import QemuRig
from hil.rigs.ssh import LOGIN_TIMEOUT_S
from hil.rigs.virtual_machine import SSH_USER
from hil.scenarios.test_no_rtc_clock import points_before_the_clock_is_synchronised
from hil.scenarios.test_power_cut_mqtt import power_cuts_during_lan_ingest
from imagetools import artifacts_dir, needed_later

pytestmark = [pytest.mark.slow, pytest.mark.timeout(80 * 60)]

POWER_CUTS = 5
#: The qemu rig above makes the five cuts; this proves the ssh rig's power command cuts and
#: restores a machine.
SSH_RIG_POWER_CUTS = 1
_results: list[tuple[str, ScenarioResult]] = []


def run_scenario(rig, name: str, scenario, record_property) -> None:
    """``scenario(rig, figures)`` on ``rig``; its figures go to the test's properties and the
    shared report."""
    result = ScenarioResult(name)
    started = time.monotonic()
    try:
        scenario(rig, result.figures)
        result.outcome = "passed"
    except BaseException as e:
        result.outcome = "failed"
        result.evidence = f"{e}\n--- gateway log (tail) ---\n{rig.log_tail(60)}"
        raise
    finally:
        result.seconds = time.monotonic() - started
        _results.append((rig.kind, result))
        for kind in {k for k, _ in _results}:
            write_markdown(artifacts_dir() / f"hil-report-{kind}.md", kind,
                           [r for k, r in _results if k == kind])
        for figure, value in result.figures.items():
            record_property(figure, value)
        print(result.figures)


def test_power_cuts_during_lan_ingest_on_the_booted_image(guest, tmp_path, record_property):
    run_scenario(QemuRig(tmp_path, machine=guest), "power cuts during LAN ingest (scenario 4)",
                 lambda rig, figures: power_cuts_during_lan_ingest(rig, figures, POWER_CUTS),
                 record_property)


def test_no_rtc_clock_on_the_booted_image(guest, tmp_path, record_property):
    rig = QemuRig(tmp_path, machine=guest)
    try:
        run_scenario(rig, "no real-time clock (scenario 6)", points_before_the_clock_is_synchronised,
                     record_property)
    finally:
        rig.close()   # the next power on is on the host's time again


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


def test_ssh_rig_power_cuts_through_a_power_command(guest, tmp_path, record_property, request):
    """The ssh rig knows the machine only as an SSH address, a LAN address and a power command."""
    guest.wait_for_login(LOGIN_TIMEOUT_S)
    guest.kill()  # the power command owns the machine until the end of the test
    rig = open_rig(f"ssh://{SSH_USER}@127.0.0.1:{guest.host_port(22)}", tmp_path / "rig",
                   power_command=guest.write_power_command(tmp_path / "power"), ssh_key=str(guest.key),
                   lan_endpoint=f"127.0.0.1:{guest.host_port(1883)}")
    try:
        rig.power.restore()
        run_scenario(rig, "power cuts during LAN ingest (scenario 4), ssh rig",
                     lambda rig, figures: power_cuts_during_lan_ingest(rig, figures, SSH_RIG_POWER_CUTS),
                     record_property)
    finally:
        rig.close()
        rig.power.cut()
        if needed_later(request, "guest"):  # a boot (a minute or two) only when one is needed
            guest.start()  # back to the machine the other tests share
            guest.wait_for_login(LOGIN_TIMEOUT_S)
