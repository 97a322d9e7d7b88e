"""Upstream answers are untrusted: each bad answer or broken connection is an error with the
stream's name and the upstream's words, counted and backed off; the position never moves for
data that was not accepted; once the upstream behaves, everything arrives."""

from __future__ import annotations

import asyncio

import pytest

from gateway.replication.stream import ReplicationStream
from gateway.store import Store
from replication_support import (RECENT_NS, local_content, rows, store_config, stream_config,
                                 vm_content, vm_expected, wait_until_equal, write_rows)

pytestmark = pytest.mark.integration


def response(status: str, body: bytes = b"", *headers: str) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


CASES = [
    # (proxy mode and options, error kind counted, words expected in the last error)
    (dict(mode="answer", answer=response("429 Too Many Requests", b"slow down", "Retry-After: 1")),
     "throttled", "429 slow down"),
    (dict(mode="answer", answer=response("200 OK", b"<html>captive portal</html>")),
     "malformed", "captive portal"),
    (dict(mode="answer", answer=response("307 Temporary Redirect", b"", "Location: /api/v2/write")),
     "redirect", "/api/v2/write"),
    (dict(mode="answer", answer=b"SMTP ready\r\n\r\n"), "malformed", "malformed answer"),
    (dict(mode="answer", answer=response("503 Service Unavailable", b"maintenance")),
     "throttled", "503 maintenance"),
    (dict(mode="answer", answer=response("500 Internal Server Error", b"disk on fire")),
     "server", "500 disk on fire"),
    (dict(mode="reset"), "network", "reset"),
    (dict(mode="blackhole"), "timeout", "no answer within 1 s"),
    (dict(mode="drip", delay=0.3), "timeout", "did not end within 1 s"),
]


@pytest.mark.parametrize("fault, kind, words", CASES, ids=[c[1] + "-" + c[0]["mode"] for c in CASES])
def test_bad_answers_are_errors_and_hold_the_position(tmp_path, victoria, proxy_to, fault, kind, words):
    proxy = proxy_to(victoria)
    proxy.set(**fault)

    async def main():
        store = await Store(str(tmp_path / "data"), store_config()).open()
        config = stream_config("influxdb_v2", proxy.url, org="o", bucket="gw", timeout="1s",
                               buckets=["raw"])
        stream = ReplicationStream(config, store)
        await stream.start()
        try:
            await write_rows(store, rows(2, RECENT_NS, 100))
            while stream.status.counters[f"errors_{kind}"] < 2:
                await asyncio.sleep(0.05)
            stats = stream.stats()
            assert stats["state"] in ("backing_off", "sending")
            assert stats["last_error"].startswith("stream up: ")
            assert words in stats["last_error"], stats["last_error"]
            assert stats["buckets"]["raw"]["position"] == 0
            assert stats["counters"].get("points_sent", 0) == 0
            delivered_unacknowledged = fault["mode"] == "drip"  # the request got through
            if not delivered_unacknowledged:
                assert vm_content(victoria) == {}

            proxy.set("pass")

            async def expected():
                return vm_expected(await local_content(store, ("raw",)))

            problems, duplicates = await wait_until_equal(expected, lambda: vm_content(victoria))
            assert problems == [], "\n".join(problems)
            if delivered_unacknowledged:  # resent: at most the batch in flight per failure
                assert duplicates <= stream.status.counters["errors_timeout"] * 200
            else:
                assert duplicates == 0
        finally:
            await stream.stop()
            await store.close()

    asyncio.run(main())


def test_a_slow_link_delivers_everything(tmp_path, victoria, proxy_to):
    proxy = proxy_to(victoria)
    proxy.set("delay", delay=0.05)

    async def main():
        store = await Store(str(tmp_path / "data"), store_config()).open()
        stream = ReplicationStream(stream_config("influxdb_v2", proxy.url, org="o", bucket="gw",
                                                 buckets=["raw"]), store)
        await stream.start()
        try:
            await write_rows(store, rows(3, RECENT_NS, 200))

            async def expected():
                return vm_expected(await local_content(store, ("raw",)))

            problems, duplicates = await wait_until_equal(expected, lambda: vm_content(victoria))
            assert problems == [] and duplicates == 0
        finally:
            await stream.stop()
            await store.close()

    asyncio.run(main())
