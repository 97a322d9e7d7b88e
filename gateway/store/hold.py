"""Points held until the clock is synchronised (the rule: :mod:`gateway.clock`).

Points the gateway timed before the clock could be trusted carry held times (``HELD_BASE_NS``
plus CLOCK_MONOTONIC). :meth:`Store.write` hands them here instead of to a bucket: each write's
held points are appended to one journal file (``held.lp`` in the store's directory,
[format](../../docs/format/hold.md)) as a record of line protocol with the boot it was taken in,
and synced before the write returns, so an acknowledgement means the same as for stored points
and a restart or power cut before the sync loses nothing.

Once the clock is trusted the store releases the journal, oldest record first: points of this
boot get ``offset + (held - HELD_BASE_NS)`` (offset = realtime - monotonic then); points of an
earlier boot, whose monotonic clock cannot be compared with this one, are placed so that the
last of that boot ends where this boot began (the time the device was off is unknown and taken
as none; the spacing of its points is kept). Then the file is emptied. A crash during the
release writes the same points again with the same times (they overwrite themselves).

The journal is bounded (``[clock] max_held``): a write that does not fit is refused (StoreError),
so MQTT sources keep their messages and resend, local readings are dropped and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import mmap
import os
import re
import zlib
from typing import Iterator

from gateway.batch import Batch
from gateway.clock import HELD_BASE_NS, WallClock
from gateway.durable import sync_directory
from gateway.errors import StoreError
from gateway.lineprotocol import format_line, parse, split_series_key

log = logging.getLogger("gateway.store.hold")

FILE_NAME = "held.lp"
_HEADER = re.compile(rb"HOLD ([0-9a-zA-Z-]{1,64}) (\S{1,255}) ([0-9]{1,10}) ([0-9]{1,10}) ([0-9a-f]{8})\n")
#: Held points are stored in batches of about this many points once the clock is synchronised.
RELEASE_BATCH_POINTS = 50_000
#: A header is at most this long (the pattern's bounds plus spaces and the newline).
_HEADER_MAX = 4 + 1 + 64 + 1 + 255 + 1 + 10 + 1 + 10 + 1 + 8 + 1


@dataclasses.dataclass(frozen=True)
class Record:
    boot_id: str
    bucket: str
    points: int
    payload: bytes


def encode_record(boot_id: str, bucket: str, lines: bytes, points: int) -> bytes:
    header = f"HOLD {boot_id} {bucket} {points} {len(lines)} {zlib.crc32(lines):08x}\n"
    return header.encode() + lines


class RecordScan:
    """The journal's records in ``data`` (bytes or a read-only mmap of the file, so that a
    journal of max_held bytes is never read into memory whole), one at a time. After a walk,
    ``damaged`` counts records skipped because their checksum failed, ``torn`` the bytes of a
    torn tail.

    A record whose checksum fails is skipped and the walk goes on at its declared end; a header
    that cannot be read ends it (what follows is a torn tail: the last append was cut)."""

    def __init__(self, data) -> None:
        self.data = data
        self.damaged = 0
        self.torn = 0

    def __iter__(self) -> Iterator[Record]:
        data, pos, self.damaged = self.data, 0, 0
        while pos < len(data):
            m = _HEADER.match(data, pos, min(len(data), pos + _HEADER_MAX))
            if m is None:
                break
            boot_id, bucket = m.group(1).decode(), m.group(2).decode("utf-8", "replace")
            points, length, crc = int(m.group(3)), int(m.group(4)), int(m.group(5), 16)
            start = m.end()
            end = start + length
            if end > len(data):
                break
            payload = data[start:end]
            if zlib.crc32(payload) != crc:
                self.damaged += 1
            else:
                yield Record(boot_id, bucket, points, payload)
            pos = end
        self.torn = len(data) - pos


@contextlib.contextmanager
def mapped(path: str) -> Iterator[bytes | mmap.mmap]:
    """The file's bytes as a read-only mapping (an empty file as b"")."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            yield b""
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            yield mm


def held_lines(points: list[tuple[str, int, object]]) -> bytes:
    """Line protocol of ``(series key, time, value)`` points."""
    out = []
    for key, ts, value in points:
        measurement, tags, field = split_series_key(key)
        out.append(format_line(measurement, tags, {field: value}, ts))
    return ("\n".join(out) + "\n").encode()


class Hold:
    """The journal of held points of one store (see the module's doc)."""

    def __init__(self, store_path: str, clock: WallClock, max_bytes: int) -> None:
        self.path = os.path.join(store_path, FILE_NAME)
        self.dir = store_path
        self.clock = clock
        self.max_bytes = max_bytes
        self.boot_id = clock.source.boot_id()
        self._lock = asyncio.Lock()
        self.held_points = 0
        self.held_bytes = 0
        self.released_points = 0
        #: Records whose checksum failed (skipped) and torn tails cut off, since start.
        self.damaged_records = 0
        self.torn_bytes = 0
        self.refused_points = 0
        self.earlier_boots = 0
        self.last_error: str | None = None

    # ------------------------------------------------------------------ opening

    def open(self) -> None:
        """Reads what an earlier run held (blocking: call on a worker thread)."""
        try:
            with mapped(self.path) as data:
                scan = RecordScan(data)
                boots: set[str] = set()
                for r in scan:
                    self.held_points += r.points
                    boots.add(r.boot_id)
                size = len(data)
        except FileNotFoundError:
            return
        self._note_damage(scan.damaged, scan.torn)
        if scan.torn:
            # Cut the torn tail so that new records follow a whole one.
            with open(self.path, "r+b") as f:
                f.truncate(size - scan.torn)
                os.fsync(f.fileno())
        self.held_bytes = size - scan.torn
        self.earlier_boots = len(boots - {self.boot_id})
        if self.held_points:
            log.warning("%d point(s) held from before the clock was synchronised (%d earlier "
                        "boot(s)); they are stored once it is", self.held_points, self.earlier_boots)

    def _note_damage(self, damaged: int, torn: int) -> None:
        if damaged or torn:
            self.damaged_records += damaged
            self.torn_bytes += torn
            self.last_error = (f"{self.path}: {damaged} damaged record(s) skipped, "
                               f"{torn} byte(s) of a torn tail cut")
            log.error("%s", self.last_error)

    # ------------------------------------------------------------------ writing

    def split(self, batch: Batch) -> tuple[Batch, list[tuple[str, int, object]]]:
        """(points to store now, points to hold) of a batch with held times. Held times that
        come in after the clock became trusted are re-timed here; a device's time that only
        looks held (far ahead of this boot's monotonic clock) is left alone."""
        timed, held = Batch(), []
        trusted = self.clock.trusted()
        for key, ts, value in batch:
            if self.clock.is_held(ts):
                if trusted:
                    timed.add_key(key, value, self.clock.real_time_of(ts))
                else:
                    held.append((key, ts, value))
            else:
                timed.add_key(key, value, ts)
        return timed, held

    async def append(self, bucket: str, points: list[tuple[str, int, object]]) -> None:
        """Appends and syncs one record; StoreError when it does not fit or cannot be written."""
        lines = held_lines(points)
        record = encode_record(self.boot_id, bucket, lines, len(points))
        async with self._lock:
            if self.held_bytes + len(record) > self.max_bytes:
                self.refused_points += len(points)
                raise StoreError(f"{len(points)} point(s) refused: the clock is not synchronised "
                                 f"and the points held until it is fill max_held "
                                 f"({self.max_bytes} bytes)")
            try:
                await asyncio.to_thread(self._append_on_thread, record)
            except OSError as e:
                self.last_error = f"cannot write {self.path}: {e.strerror or e}"
                raise StoreError(self.last_error) from e
            self.held_bytes += len(record)
            self.held_points += len(points)

    def _append_on_thread(self, record: bytes) -> None:
        new = not os.path.exists(self.path)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            written = os.write(fd, record)
            if written != len(record):
                raise OSError(f"short write ({written} of {len(record)} bytes)")
            os.fdatasync(fd)
        finally:
            os.close(fd)
        if new:
            sync_directory(self.dir)

    # ------------------------------------------------------------------ releasing

    def _parsed(self, scan: RecordScan) -> Iterator[tuple[Record, Batch]]:
        for r in scan:
            result = parse(r.payload)
            if result.errors:
                # The checksum held, so the gateway wrote this: report, keep the good lines.
                self.damaged_records += 1
                self.last_error = f"{self.path}: held record of bucket {r.bucket}: {result.errors[0]}"
                log.error("%s", self.last_error)
            yield r, result.batch

    def _earlier_boots_ends(self, data) -> dict[str, int]:
        """The last held time of each earlier boot (its points end where this boot began)."""
        last: dict[str, int] = {}
        for r in RecordScan(data):
            if r.boot_id != self.boot_id:
                for _, ts, _ in parse(r.payload).batch:
                    last[r.boot_id] = max(last.get(r.boot_id, ts), ts)
        return last

    def retimed(self, data, last: dict[str, int]) -> Iterator[tuple[str, Batch]]:
        """The journal's points as (bucket, batch) with real times (the clock is trusted), in
        batches of up to RELEASE_BATCH_POINTS per bucket: records are small (one write's held
        points) and go to the store gathered, not one synced write each; memory is a batch per
        bucket, not the journal. A batch is yielded once full; the rest at the end."""
        offset = self.clock.offset_ns()
        scan = RecordScan(data)
        open_batches: dict[str, Batch] = {}
        for r, held in self._parsed(scan):
            shift = offset if r.boot_id == self.boot_id else offset - (last[r.boot_id] - HELD_BASE_NS) - 1
            batch = open_batches.setdefault(r.bucket, Batch())
            for key, ts, value in held:
                batch.add_key(key, value, ts - HELD_BASE_NS + shift)
            if len(batch) >= RELEASE_BATCH_POINTS:
                yield r.bucket, open_batches.pop(r.bucket)
        self._note_damage(scan.damaged, scan.torn)
        yield from ((bucket, batch) for bucket, batch in open_batches.items() if len(batch))

    async def release(self, write, buckets) -> int:
        """Stores every held point with its real time through ``write(batch, bucket)`` (which
        returns once they are durable), then empties the journal; returns the points stored.
        Points of a bucket no longer among ``buckets`` are dropped (counted and logged); a
        failing write raises and leaves the journal for the next try. The journal is read
        through a mapping and re-timed on a worker thread, a batch at a time."""
        async with self._lock:
            if not self.held_bytes:
                return 0
            released = 0
            with mapped(self.path) as data:
                last = await asyncio.to_thread(self._earlier_boots_ends, data)
                batches = self.retimed(data, last)
                while (item := await asyncio.to_thread(next, batches, None)) is not None:
                    bucket, batch = item
                    if bucket not in buckets:
                        self.refused_points += len(batch)
                        self.last_error = (f"{len(batch)} held point(s) of bucket {bucket!r} dropped: "
                                           f"the store has no such bucket any more")
                        log.error("%s", self.last_error)
                        continue
                    await write(batch, bucket)
                    released += len(batch)
            await asyncio.to_thread(self._empty)
            self.released_points += released
            self.held_points = 0
            self.held_bytes = 0
            self.earlier_boots = 0
            log.info("the clock is synchronised: %d held point(s) stored with their real times",
                     released)
            return released

    def _empty(self) -> None:
        os.unlink(self.path)
        sync_directory(self.dir)

    def status(self) -> dict:
        return {"held_points": self.held_points, "held_bytes": self.held_bytes,
                "max_held_bytes": self.max_bytes, "released_points": self.released_points,
                "refused_points": self.refused_points, "damaged_records": self.damaged_records,
                "torn_bytes": self.torn_bytes, "earlier_boots": self.earlier_boots,
                "last_error": self.last_error}
