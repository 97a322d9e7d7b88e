"""Opening a bucket after a stop or a crash: the ring's chain, the index rebuild, WAL replay.

The index's checkpoint says where the ring's chain of entries stood; recovery follows that chain
as far as it continues (blocks sealed after the last checkpoint), then replays the WAL into the
heads, skipping what blocks already hold. An index that is new while the ring is not (deleted or
lost) is rebuilt from a full scan of the ring, with the series file for the keys and the cursor
file for the replication cursors as of the last checkpoint. Damaged records and blocks are
skipped and counted.
"""

from __future__ import annotations

import logging
import os
from array import array
from typing import Callable

from gateway.store import catalogue
from gateway.store.bucket import WAL_DAMAGE, Bucket, NewSeries, monotonic_ms
from gateway.store.index import BlockIndex, BucketState
from gateway.store.native import RING_HEADER_SIZE
from gateway.store.settings import Access, settle
from gateway.store.threads import StoreThreads

log = logging.getLogger("gateway.store")


class Recovery:
    def __init__(self, index: BlockIndex, threads: StoreThreads, access: Access,
                 clock: Callable[[], int]) -> None:
        self.index = index
        self.threads = threads
        self.access = access
        self.clock = clock

    async def recover(self, b: Bucket) -> None:
        """Brings the bucket's index state, catalogue and heads to where the last run left
        them. The caller checkpoints afterwards, before taking writes (unless read-only:
        then everything found stays in memory)."""
        state = b.state = await self.index.load_bucket(b.name)
        b.cursors = dict(state.cursors)
        await settle(b, state, self.index, self.threads, self.access, self.clock)
        dropped, points = await self.index.drop_beyond(state.id, b.ring.capacity)
        if dropped:
            log.warning("bucket %s: ring file shrunk to %d bytes; %d blocks (%d points) beyond "
                        "it dropped", b.name, b.ring.capacity, dropped, points)
            state.counters["evicted_blocks"] += dropped
            state.counters["evicted_points"] += points
            await self.index.refresh_totals(state)
        rebuilt = None
        older_store = False
        if self.index.created and b.ring_existed:
            rebuilt = await self.rebuild_index(b, state)
        elif state.series_count and not os.path.exists(b.series_path):
            older_store = True   # a store from before the series file: write it
        max_lsn = 0
        # The index's series a batch at a time: a million rows as tuples would take a few
        # hundred MB at once.
        async for rows in self._series_rows(state, rebuilt):
            for sid, type_, key, sealed_lsn in rows:
                if not b.heads.define(sid, type_, key.encode("utf-8", "surrogateescape"),
                                      sealed_lsn):
                    log.error("bucket %s: catalogue entry %d (%s) conflicts with another; "
                              "ignored", b.name, sid, key)
                max_lsn = max(max_lsn, sealed_lsn)
            b.add_series([(sid, t, k) for sid, t, k, _ in rows], persist=False)
            if older_store:
                b.file_series.extend(row[0] for row in rows)
        start = state.write_pos if state.write_pos >= RING_HEADER_SIZE else RING_HEADER_SIZE
        found = await self.threads.on_store_thread(b.recover_ring_on_thread, start,
                                                   state.next_seq)
        max_series_id = 0
        for e in found:
            if e.wal_lsn:
                b.heads.note_sealed(e.series_id, e.wal_lsn)
                max_lsn = max(max_lsn, e.wal_lsn)
            max_series_id = max(max_series_id, e.series_id)
        b.absorb(found, [])
        if found:
            log.info("bucket %s: %d blocks found in the ring after the last checkpoint",
                     b.name, len(found))
        b.heads.resume(max(max_lsn + 1, b.segments[-1][0] if b.segments else 0), max_series_id)
        await self._replay(b)
        await self._load_positions(b)
        if self.access is not Access.READ:
            await self.threads.on_store_thread(b.open_segment_on_thread)

    async def _load_positions(self, b: Bucket) -> None:
        """The streams' positions: the index holds them as of the last checkpoint, the
        position file as they were last written (newer, unless it was lost)."""
        b.cursors_indexed = dict(b.state.cursors)
        for name, (seq, lsn) in (await self.threads.on_store_thread(b.position_file.load)).items():
            b.cursors[name] = max(seq, b.cursors.get(name, 0))
            b.lsn_positions[name] = lsn

    async def _series_rows(self, state: BucketState, rebuilt: list | None):
        """The bucket's series (id, type, key, sealed LSN) in batches: those an index rebuild
        found, or the index's."""
        if rebuilt is not None:
            yield rebuilt
            return
        async for rows in self.index.series_rows(state.id):
            yield rows

    async def keys_outdated(self, b: Bucket) -> bool:
        """True when the bucket's series keys are in an older escaping (see catalogue); asked
        before recovery, which may create the series file."""
        state = await self.index.load_bucket(b.name)
        version = await self.threads.on_store_thread(catalogue.key_version, b.series_path,
                                                     state.series_count > 0)
        return version < catalogue.KEY_VERSION

    async def migrate_keys(self, b: Bucket) -> None:
        """Rewrites the keys of a bucket whose heads are all sealed and whose files are closed:
        in the index and in the series file, which then carries the current version. The WAL
        still names the series by id (and replay ignores its keys for known ids)."""
        state = await self.index.load_bucket(b.name)
        rows = [row async for batch in self.index.series_rows(state.id) for row in batch]
        series, renames = [], []
        kept = 0
        for sid, type_, key, _ in rows:
            try:
                new = catalogue.migrate_key(key)
            except ValueError as e:
                # kept as bytes: readable, under the name those bytes now spell
                log.warning("bucket %s: series %d key %r kept as it was: %s", b.name, sid,
                            key, e)
                new, kept = key, kept + 1
            if new != key:
                renames.append((sid, new))
            series.append((sid, type_, new))
        await self.index.rename_series(state.id, renames)
        await self.threads.on_store_thread(catalogue.rewrite, b.series_path, series)
        log.warning("bucket %s: series keys migrated to InfluxDB's backslash escaping "
                    "(%d of %d keys changed, %d kept)", b.name, len(renames), len(series), kept)

    async def _replay(self, b: Bucket) -> None:
        replay = await self.threads.on_store_thread(b.replay_on_thread, monotonic_ms())
        counters = b.heads.counters()
        await self._count_damage(b, replay["damage"])
        if counters["corrupt_records"] or counters["points_lost"]:
            log.error("bucket %s: WAL replay skipped %d damaged records (%d bytes) and %d points "
                      "of unknown series", b.name, counters["corrupt_records"],
                      counters["corrupt_bytes"], counters["points_lost"])
        if counters["points_replayed"]:
            log.info("bucket %s: %d points replayed from %d WAL segments", b.name,
                     counters["points_replayed"], replay["segments"])
        b.unlogged_points = 0

    async def _count_damage(self, b: Bucket, found: dict) -> None:
        """Adds the WAL damage replay found to the bucket's durable totals. The file also
        remembers what each segment still present held, so damage that stays in a segment
        across restarts is counted once."""
        saved = await self.threads.on_store_thread(b.damage_file.load)
        totals = {name: saved.get(name, 0) for name in WAL_DAMAGE}
        counts = dict(totals)
        for first_lsn, damage in found.items():
            for name, n in damage.items():
                key = f"{first_lsn:016x}.{name}"
                before = saved.get(key, 0)
                if n > before:
                    totals[name] += n - before
                if n or before:
                    counts[key] = max(n, before)
        counts.update(totals)
        counts = {k: v for k, v in counts.items() if v}
        if counts != saved and self.access is not Access.READ:   # reading changes nothing
            try:
                await self.threads.on_store_thread(b.damage_file.save, counts)
            except OSError as e:
                log.error("bucket %s: cannot write %s: %s", b.name, b.damage_file.path, e)
        for name in WAL_DAMAGE:
            b.counters[name] = totals[name]

    async def rebuild_index(self, b: Bucket, state: BucketState) -> list[tuple[int, int, str, int]]:
        """The index is new but the ring is not: re-index the ring from a full scan, with the
        series file for the keys. Returns the series found (id, type, key, sealed LSN)."""
        series, damaged = await self.threads.on_store_thread(catalogue.read, b.series_path)
        known: dict[int, NewSeries] = {}
        for sid, type_, key in series:
            known.setdefault(sid, (sid, type_, key))
        found = await self.threads.on_store_thread(b.rebuild_on_thread)
        sealed: dict[int, int] = {}
        for e in found:
            sealed[e.series_id] = max(sealed.get(e.series_id, 0), e.wal_lsn)
        b.pending_series.extend(known)
        cursors = await self.threads.on_store_thread(b.cursor_file.load)
        for name, seq in cursors.items():
            await self.index.set_cursor(name, state.id, seq)
        state.cursors = cursors
        b.cursors = dict(cursors)
        b.cursors_saved = dict(cursors)
        state.write_pos, state.next_seq = b.ring.position
        if found:
            b.chain_start = found[0].offset  # the rebuilt run evicts nothing before it
        b.absorb(found, [])
        for e in found:
            if e.series_id not in known:
                b.counters["blocks_of_unknown_series"] += 1
        log.warning("bucket %s: block index rebuilt from the ring: %d blocks, %d series "
                    "(%d damaged series records), %d replication cursors as of the last "
                    "checkpoint", b.name, len(found), len(known), damaged, len(cursors))
        return [(sid, t, k, sealed.get(sid, 0)) for sid, t, k in known.values()]
