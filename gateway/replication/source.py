"""What a stream reads from the store, as :class:`SeriesPoints`: sealed blocks after its
position (``Store.blocks_since``), the durable points still in heads (``Store.durable_heads``)
and the points of the WAL up to its write-order position (``Store.logged_upto``: what it had
sent, after a restart), plus a cheap estimate of its backlog."""

from __future__ import annotations

from array import array

from gateway.replication.batching import SeriesPoints

_TYPECODES = {1: "d", 2: "q", 3: "Q"}
_BOOL, _STRING = 4, 5


class StoreSource:
    def __init__(self, store) -> None:
        self.store = store

    async def sealed_after(self, bucket: str, after_seq: int,
                           limit: int) -> list[tuple[int, SeriesPoints]]:
        """Up to ``limit`` sealed blocks above ``after_seq``, oldest first, as (seq, points)."""
        blocks = await self.store.blocks_since(bucket, after_seq, limit)
        return [(b.seq, SeriesPoints(b.series, b.timestamps, b.values)) for b in blocks]

    async def durable_heads(self, bucket: str, measurements, timeout: float):
        """The heads' durable points (arrival order), the newest sealed sequence number and
        the LSN of the last WAL record, or None when no commit made them durable within
        ``timeout`` seconds."""
        got = await self.store.durable_heads(bucket, measurements, timeout)
        if got is None:
            return None
        heads, last_seq, lsn = got
        return [_series_points(info, head) for info, head in heads], last_seq, lsn

    async def logged_upto(self, bucket: str, lsn: int, measurements) -> list[SeriesPoints]:
        """The points of the WAL records up to ``lsn`` the store still holds, per series."""
        got = await self.store.logged_upto(bucket, lsn)
        return [_series_points(info, head) for info, head in got
                if measurements is None or info.measurement in measurements]

    def backlog(self, bucket: str, after_seq: int) -> dict:
        """Blocks after the position, and their bytes and points estimated from the bucket's
        averages (exact figures would need a pass over the index)."""
        stats = self.store.stats(bucket)[bucket]
        last = self.store.last_sealed_seq(bucket)
        blocks = max(0, min(last - after_seq, stats["blocks"]))
        per_block_bytes = stats["used_bytes"] / stats["blocks"] if stats["blocks"] else 0
        per_block_points = stats["points_in_blocks"] / stats["blocks"] if stats["blocks"] else 0
        return {"blocks": blocks, "bytes": int(blocks * per_block_bytes),
                "points": int(blocks * per_block_points), "stats": stats}


def _series_points(info, head) -> SeriesPoints:
    """A head copy's raw 64-bit values as the series' own type."""
    if info.type == _STRING:
        values = head.strings
    elif info.type == _BOOL:
        values = array("B", head.raw.tobytes()[::8])
    else:
        values = array(_TYPECODES[info.type], head.raw.tobytes())
    return SeriesPoints(info, head.timestamps, values)
