"""The store's figures for the status page and ``gateway status``: sizes, points, counters,
and what the store costs the SD card in bytes written a day."""

from __future__ import annotations

import time
from typing import Any

from gateway.diskio import block_device_stat, device_write_bytes, process_write_bytes
from gateway.store.bucket import Bucket

DAY_S = 86400


class CardWrites:
    """Bytes written since the store opened, as a rate a day: by this process (every file it
    writes, the store's and any other) and by the block device holding the store (its own
    counters: filesystem journal and metadata included, and every other writer of that
    device). An SD card wears by the device figure."""

    def __init__(self, store_path: str) -> None:
        self.device = block_device_stat(store_path)
        self.started = time.monotonic()
        self.process_at_start = process_write_bytes()
        self.device_at_start = device_write_bytes(self.device)

    def figures(self) -> dict[str, Any]:
        seconds = max(time.monotonic() - self.started, 1e-3)
        process = _since(process_write_bytes(), self.process_at_start)
        device = _since(device_write_bytes(self.device), self.device_at_start)
        return {
            "seconds": seconds,
            "process_bytes_written": process,
            "process_bytes_per_day": None if process is None else process * DAY_S / seconds,
            "device": self.device,
            "device_bytes_written": device,
            "device_bytes_per_day": None if device is None else device * DAY_S / seconds,
        }


def _since(now: int | None, start: int | None) -> int | None:
    return None if now is None or start is None else now - start


def bucket_stats(b: Bucket) -> dict[str, Any]:
    """A bucket's figures; cheap, callable from any thread (it only reads)."""
    ring, wal, heads_, state = b.opened_parts()
    heads = heads_.counters() if heads_ is not None and not heads_.closed else {}
    live_bytes = state.live_bytes if state else 0
    block_points = state.live_points if state else 0
    head_points = heads.get("head_points_total", 0)
    pending = b.unindexed_blocks()  # with the blocks a checkpoint is indexing
    pending_points = sum(e.count for e in pending)
    pending_bytes = sum(e.length for e in pending)
    counters = dict(state.counters) if state else {}
    written = (wal.bytes_written if wal else 0) + (ring.bytes_written if ring else 0)
    return {
        "max_size": b.max_size,
        "retention_s": b.retention_ns / 1e9 if b.retention_ns else None,
        "used_bytes": live_bytes + pending_bytes,
        "fill": (live_bytes + pending_bytes) / b.data_capacity,
        "blocks": (state.live_blocks if state else 0) + len(pending),
        "points": block_points + pending_points + head_points,
        "points_in_blocks": block_points + pending_points,
        "points_in_heads": head_points,
        "head_bytes": heads.get("head_bytes", 0),
        "bytes_per_point": ((live_bytes + pending_bytes) / (block_points + pending_points)
                            if block_points + pending_points else None),
        "oldest": state.oldest if state else None,
        "newest": state.newest if state else None,
        "series": len(b.catalogue),
        "wal_bytes": b.wal_size(),
        "wal_segments": len(b.segments),
        "bytes_written": written,
        "bytes_written_per_day": written * DAY_S / max(time.monotonic() - b.opened_at, 1e-3),
        "points_written": heads.get("points_ingested", 0),
        "type_conflicts": b.counters["type_conflicts"],
        "too_old": b.counters["too_old"],
        "series_limited": b.counters["series_limited"],
        "max_series": b.max_series or None,
        "wal_corrupt_records": b.counters["wal_corrupt_records"],
        "wal_points_lost": b.counters["wal_points_lost"],
        "wal_bad_segments": b.counters["wal_bad_segments"],
        "wal_lsn_gaps": b.counters["wal_lsn_gaps"],
        "wal_records_missing": b.counters["wal_records_missing"],
        "wal_syncs": b.counters["wal_syncs"],
        "corrupt_blocks": counters.get("corrupt_blocks", 0) + len(b.corrupt_seqs),
        "evicted_blocks": counters.get("evicted_blocks", 0),
        "evicted_points": counters.get("evicted_points", 0),
        "expired_blocks": counters.get("expired_blocks", 0),
        "expired_points": counters.get("expired_points", 0),
        "dropped_before_forwarding": counters.get("dropped_unforwarded", 0),
        "commit_errors": b.counters["commit_errors"],
        "seal_errors": b.counters["seal_errors"],
        "ring_header_damage": b.counters["ring_header_damage"],
        "index_repairs": b.counters["index_repairs"],
        "overwritten_while_read": b.counters["overwritten_while_read"],
    }
