"""pytest wiring of the HIL scenarios: the ``--rig`` option, the rig fixture, the report.

``hil/run`` is the runner a person uses; ``make test`` collects these scenarios too (on the
emulated rig), so CI runs every one of them.
"""

from __future__ import annotations

import pathlib
import pytest

from hil.report import ScenarioResult, write_markdown
from hil.rigs import RigLacks, open_rig

REPO = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_REPORT = REPO / "build" / "test-artifacts" / "hil" / "report.md"


def pytest_addoption(parser):
    group = parser.getgroup("hil", "hardware-in-the-loop scenarios")
    group.addoption("--rig", default="emulated",
                    help="emulated (default), qemu or ssh://user@host")
    group.addoption("--write-budget-mib-per-day", type=float, default=1024.0,
                    help="scenario 7's budget of bytes written to the card a day")
    group.addoption("--power-cuts", type=int, default=5,
                    help="scenario 4's number of power cuts")
    group.addoption("--power-cut-minutes", type=float,
                    help="scenario 4: no new power cut after this many minutes (then the checks)")
    group.addoption("--power-command",
                    help="the ssh rig's power switch: a shell command, {state} replaced by on or off")
    group.addoption("--ssh-key", help="the ssh rig's login key (default: ssh's own keys and config)")
    group.addoption("--gpio-loopback", metavar="IN:OUT[,IN:OUT]",
                    help="the ssh rig's GPIO stimulus: output lines wired back to inputs (BCM numbers)")
    group.addoption("--lan-endpoint", metavar="HOST:PORT",
                    help="the ssh rig: where a LAN device reaches the gateway (default: the SSH host, 1883)")
    group.addoption("--upstream-listen", metavar="HOST:PORT",
                    help="the ssh rig's upstream: an address of this machine the device reaches")
    group.addoption("--upstream-url", metavar="URL",
                    help="the ssh rig: the upstream's URL as the device reaches it (default: http://HOST:PORT)")
    group.addoption("--hil-report", default=str(DEFAULT_REPORT),
                    help="where the Markdown report of the scenarios goes")


def pytest_collection_modifyitems(config, items):
    # On a booted device a scenario's length is its power cuts' boots (minutes each under qemu,
    # 50 cuts are hours): the suite's per-test timeout would cut a long run short, and every
    # wait of the qemu and ssh rigs has its own bound (login, service, command).
    if config.getoption("--rig") != "emulated":
        for item in items:
            item.add_marker(pytest.mark.timeout(0))


_results: dict[str, ScenarioResult] = {}
_logs: dict[str, list[str]] = {}


@pytest.fixture
def figures(request) -> dict:
    """What a scenario measured (points written/stored/lost, power cuts, bytes/day...)."""
    result = _results.setdefault(request.node.nodeid, ScenarioResult(request.node.name))
    return result.figures


@pytest.fixture
def make_rig(request, tmp_path):
    """``make_rig(card_mib=0)``: a rig of the kind ``--rig`` names; closed after the scenario."""
    made = []

    def make(card_mib: int = 0):
        try:
            option = request.config.getoption
            rig = open_rig(option("--rig"), tmp_path / f"rig{len(made)}", card_mib=card_mib,
                           power_command=option("--power-command"), ssh_key=option("--ssh-key"),
                           gpio_loopback=option("--gpio-loopback"), lan_endpoint=option("--lan-endpoint"),
                           upstream_listen=option("--upstream-listen"), upstream_url=option("--upstream-url"))
        except RigLacks as e:
            pytest.skip(str(e))
        made.append(rig)
        return rig

    yield make
    for rig in made:
        tail = rig.log_tail(60) if hasattr(rig, "log_tail") else ""
        rig.close()
        _logs.setdefault(request.node.nodeid, []).append(tail)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if "hil" not in item.keywords:
        return
    if call.excinfo is not None and call.excinfo.errisinstance(RigLacks):
        # A capability the rig has not got, asked for during the scenario: not a failure of
        # the device, and never a pass.
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {call.excinfo.value}")
    result = _results.setdefault(item.nodeid, ScenarioResult(item.name))
    result.seconds += report.duration
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        if report.skipped:
            result.outcome = "not possible on this rig"
        else:
            result.outcome = report.outcome
        if report.failed:
            result.evidence = str(report.longrepr)[-3000:]


def pytest_sessionfinish(session, exitstatus):
    results = [r for r in _results.values()]
    if not results:
        return
    # A failure's evidence: the assertion, then the tail of the gateway's log on the rig.
    for nodeid, r in _results.items():
        if r.outcome == "failed":
            r.evidence += "".join(f"\n--- gateway log (tail) ---\n{t}" for t in _logs.get(nodeid, []) if t)
    write_markdown(pathlib.Path(session.config.getoption("--hil-report")),
                   session.config.getoption("--rig"), results)
