"""Suite-wide policy: in CI (``CI`` set) a skipped test fails the run.

`make test` installs everything the suite needs, so a skip there means a missing install step
or a broken fixture, which must not pass as green.
"""

import os


def pytest_sessionfinish(session, exitstatus):
    if not os.environ.get("CI"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped and exitstatus == 0:
        for report in skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
            reporter.write_line(f"skipped in CI: {report.nodeid}: {reason}", red=True)
        session.exitstatus = 1
