"""What a stream reads from the store: sealed blocks after its position, and the durable
points still in heads.

Sealed blocks come in sequence order, both those already in the block index and those sealed
since the last checkpoint (``Bucket.pending``), so a stream never has to wait for a
checkpoint or for a head to seal. Heads are copied only at a moment when every point in them
is durable (the bucket's last commit covered every batch taken, and no sealed block is on its
way to the index), on the event loop thread, where the commit bookkeeping also runs.
"""

from __future__ import annotations

import asyncio
from array import array

from gateway.replication.batching import SeriesPoints

_TYPECODES = {1: "d", 2: "q", 3: "Q"}


class StoreSource:
    def __init__(self, store) -> None:
        self.store = store

    async def sealed_after(self, bucket: str, after_seq: int,
                           limit: int) -> list[tuple[int, SeriesPoints]]:
        """Up to ``limit`` sealed blocks with a sequence number above ``after_seq``, oldest
        first, as (seq, points). Blocks evicted meanwhile are left out."""
        store = self.store
        b = store.bucket(bucket)
        rows = await store.index.blocks_after(b.state.id, after_seq, limit)
        refs = {r.seq: (r.series, r.offset, r.length) for r in rows}
        for e in list(b.pending):
            if e.seq > after_seq:
                refs.setdefault(e.seq, (e.series_id, e.offset, e.length))
        wanted = sorted(refs)[:limit]
        loop = asyncio.get_running_loop()
        out = []
        for seq in wanted:
            sid, offset, length = refs[seq]
            info = b.catalogue.get(sid)
            got = await loop.run_in_executor(store._read_thread, store._read_blocks, b,
                                             [(seq, offset, length)])
            if got and info is not None:
                out.append((seq, SeriesPoints(info, got[0][0], got[0][1])))
        return out

    def last_sealed_seq(self, bucket: str) -> int:
        """The sequence number of the newest block written to the bucket's ring."""
        b = self.store.bucket(bucket)
        return b.ring.position[1] - 1

    def durable_heads(self, bucket: str, measurements=None) -> tuple[list[SeriesPoints], int] | None:
        """Every head's points (arrival order) and the newest sealed sequence number, if right
        now every point in the heads is durable and every sealed block is visible to
        :meth:`sealed_after`; None otherwise (the caller tries again after the next commit)."""
        b = self.store.bucket(bucket)
        if b.durable_generation < b.generation:
            return None
        if not b.lock.acquire(blocking=False):
            return None
        try:
            if b.durable_generation < b.generation:
                return None
            last_seq = b.ring.position[1] - 1
            known = max([e.seq for e in b.pending] + [b.state.next_seq - 1])
            if last_seq > known:
                return None  # a seal's blocks are on their way to Bucket.pending
            out = []
            for sid, info in list(b.catalogue.items()):
                if measurements is not None and info.measurement not in measurements:
                    continue
                ts, raw, strings = b.heads.head(sid)
                if not len(ts):
                    continue
                if info.type == 5:
                    values = strings
                elif info.type == 4:
                    values = array("B", raw.tobytes()[::8])
                else:
                    values = array(_TYPECODES[info.type], raw.tobytes())
                out.append(SeriesPoints(info, ts, values))
            return out, last_seq
        finally:
            b.lock.release()

    def backlog(self, bucket: str, after_seq: int) -> dict:
        """Estimated blocks, bytes and points not yet sent, from the bucket's averages."""
        b = self.store.bucket(bucket)
        stats = self.store.stats(bucket)[bucket]
        last = b.ring.position[1] - 1
        blocks = max(0, min(last - after_seq, stats["blocks"]))
        per_block_bytes = stats["used_bytes"] / stats["blocks"] if stats["blocks"] else 0
        per_block_points = stats["points_in_blocks"] / stats["blocks"] if stats["blocks"] else 0
        return {"blocks": blocks, "bytes": int(blocks * per_block_bytes),
                "points": int(blocks * per_block_points), "stats": stats}
