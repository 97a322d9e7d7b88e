"""Fixtures of the web tests: one live gateway per module (see web_harness)."""

import pytest

from web_harness import start_gateway


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    gw = start_gateway(tmp_path_factory.mktemp("gateway"))
    yield gw
    rc = gw.stop()
    assert rc == 0, gw.log()
    assert "Traceback" not in gw.log()
