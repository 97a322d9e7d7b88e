"""The storage status API shows what WAL replay found damaged (no token needed, unlike
/metrics), so a bench rig can check it after a power cut."""

import json
import os
import time

import pytest

from web_harness import start_gateway

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def raw_bucket(gateway) -> dict:
    (raw,) = [b for b in gateway.json("/api/status/storage")["buckets"] if b["name"] == "raw"]
    return raw


def test_wal_damage_found_at_start_is_on_the_storage_page(tmp_path):
    gw = start_gateway(tmp_path)
    try:
        assert raw_bucket(gw)["wal_damage"]["wal_corrupt_records"] == 0
        assert raw_bucket(gw)["wal_damage_text"] == "none"
        for i in range(3):
            assert gw.write(f"m v={i} {time.time_ns()}")[0] == 204
    finally:
        assert gw.stop() == 0
    wal_dir = os.path.join(gw.data_dir, "store", "buckets", "raw", "wal")
    first = os.path.join(wal_dir, sorted(os.listdir(wal_dir))[0])
    with open(first, "r+b") as f:    # a flipped bit in the first record's body
        f.seek(40 + 30)
        byte = f.read(1)[0]
        f.seek(40 + 30)
        f.write(bytes([byte ^ 0x10]))

    gw = start_gateway(tmp_path)
    try:
        raw = raw_bucket(gw)
        assert raw["wal_damage"]["wal_corrupt_records"] == 1, json.dumps(raw)
        assert "corrupt records: 1" in raw["wal_damage_text"]
        status, _, page = gw.request("GET", "/storage")
        assert status == 200 and b"WAL damage" in page and b"corrupt records: 1" in page
    finally:
        assert gw.stop() == 0
