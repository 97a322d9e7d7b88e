"""Replication positions: which blocks each stream has sent, and reading blocks in order.

A stream (named by its sender) reads sealed blocks by sequence number and records how far it got
(its cursor). Cursors are kept in the index and, at checkpoints, in a file beside the ring, so that
an index rebuilt from the ring restarts no stream at zero. Retention that drops blocks above the
lowest cursor counts them as dropped before forwarding.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Any

from gateway.store.bucket import Bucket, SeriesInfo
from gateway.store.index import BlockIndex
from gateway.store.reading import StoreReader


@dataclass(frozen=True, slots=True)
class StoredBlock:
    """A sealed block as replication reads it: its sequence number and decoded points."""

    seq: int
    series: SeriesInfo
    timestamps: array
    values: Any


class ReplicationPositions:
    def __init__(self, index: BlockIndex, reader: StoreReader) -> None:
        self.index = index
        self.reader = reader

    async def set_cursor(self, b: Bucket, name: str, seq: int | None) -> None:
        await self.index.set_cursor(name, b.state.id, seq)
        if seq is None:
            b.cursors.pop(name, None)
        else:
            b.cursors[name] = seq

    async def blocks_since(self, b: Bucket, after_seq: int, limit: int) -> list[StoredBlock]:
        rows = await self.index.blocks_after(b.state.id, after_seq, limit)
        out = []
        for r in rows:
            got = await self.reader.decoded_block(b, (r.seq, r.offset, r.length))
            info = b.catalogue.get(r.series)
            if got is not None and info is not None:
                out.append(StoredBlock(r.seq, info, got[0], got[1]))
        return out
