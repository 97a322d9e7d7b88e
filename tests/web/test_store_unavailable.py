"""When the store cannot take writes (the card is full), a write answers 503 with Retry-After
and InfluxDB's error body; once space returns, writes succeed again. A live gateway whose data
directory is on a small tmpfs."""

import json
import os
import time

import pytest

from small_disk import fill, mounted_tmpfs
from web_harness import start_gateway

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    with mounted_tmpfs(mnt, "8m") as (path, error):
        assert path is not None, f"mounting a small tmpfs needs root: {error}"
        yield mnt


def test_full_card_gives_503_with_retry_after(small_disk):
    # WAL segments are preallocated: a small one makes the write need new space on the card.
    gw = start_gateway(small_disk, '[store]\nhead_points = 65536\nwal_segment_size = "4KiB"\n'
                                   '[store.buckets.raw]\nmax_size = "512KiB"\n'
                                   '[store.buckets.rollup]\nmax_size = "64KiB"\n'
                                   '[readers]\n')
    try:
        now = time.time_ns()
        assert gw.write("".join(f"full v={i / 7} {now + i}\n" for i in range(1000)))[0] == 204
        filler = fill(str(small_disk))
        status, headers, body = gw.write("".join(f"full v={i / 7} {now + i}\n" for i in range(1000, 9000)))
        assert status == 503, body
        assert headers["Retry-After"].isdigit()
        err = json.loads(body)
        assert err["code"] == "unavailable" and "No space left on device" in err["message"]
        os.unlink(filler)
        status, _, body = gw.write("".join(f"full v={i / 7} {now + i}\n" for i in range(1000, 9000)))
        assert status == 204, body
    finally:
        assert gw.stop() == 0, gw.log()
