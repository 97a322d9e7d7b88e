"""An address someone else holds does not stop the gateway: it runs on, says why the page is
missing, and listens as soon as the address is free."""

import socket
import threading
import time

import pytest

from web_harness import free_port, start_gateway

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: The component retries every 10 s; the log line comes at start.
WAIT_S = 60


def test_taken_address_is_retried(tmp_path):
    port = free_port()
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", port))
    blocker.listen()
    started = {}
    thread = threading.Thread(target=lambda: started.update(gw=start_gateway(tmp_path, port=port)))
    thread.start()
    log = tmp_path / "gateway.log"
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        text = log.read_text() if log.exists() else ""
        if "gateway ready" in text:
            break
        time.sleep(0.2)
    assert f"cannot listen on http.listen = '127.0.0.1:{port}'" in text, text
    blocker.close()
    thread.join(WAIT_S + 60)
    gw = started["gw"]
    try:
        web = [c for c in gw.json("/api/status/overview")["components"] if c["name"] == "web"]
        assert web == [{"name": "web", "running": True, "healthy": True, "error": None}]
        assert gw.write(f"listen_probe v=1 {time.time_ns()}")[0] == 204
    finally:
        assert gw.stop() == 0, gw.log()
