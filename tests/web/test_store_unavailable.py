"""When the store cannot take writes (the card is full), a write answers 503 with Retry-After
and InfluxDB's error body; once space returns, writes succeed again. A live gateway whose data
directory is on a small tmpfs."""

import errno
import json
import os
import subprocess
import time

import pytest

from web_harness import start_gateway

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    assert r.returncode == 0, f"mounting a small tmpfs needs root: {r.stderr.strip()}"
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_card_gives_503_with_retry_after(small_disk):
    gw = start_gateway(small_disk, '[store]\nhead_points = 65536\n'
                                   '[store.buckets.raw]\nmax_size = "512KiB"\n'
                                   '[store.buckets.rollup]\nmax_size = "64KiB"\n'
                                   '[readers]\n')
    filler = small_disk / "filler"
    try:
        now = time.time_ns()
        assert gw.write("".join(f"full v={i / 7} {now + i}\n" for i in range(1000)))[0] == 204
        with open(filler, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\xff" * 65536)
            except OSError as e:
                assert e.errno == errno.ENOSPC
        status, headers, body = gw.write("".join(f"full v={i / 7} {now + i}\n" for i in range(1000, 9000)))
        assert status == 503, body
        assert headers["Retry-After"].isdigit()
        err = json.loads(body)
        assert err["code"] == "unavailable" and "No space left on device" in err["message"]
        os.unlink(filler)
        status, _, body = gw.write("".join(f"full v={i / 7} {now + i}\n" for i in range(1000, 9000)))
        assert status == 204, body
    finally:
        if filler.exists():
            filler.unlink()
        assert gw.stop() == 0, gw.log()
