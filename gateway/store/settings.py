"""A bucket's size and retention: recorded in its ring file when it is created, and what an
open does when the configuration asks for others.

Who opens the store decides (:class:`Access`): a reader changes nothing; ``gateway write``
keeps what is recorded; the daemon applies its configuration and logs what that will drop,
except that cutting a ring that holds data is left to ``gateway bucket resize``. So a command
run without the right configuration can never expire or cut a store's data.
"""

from __future__ import annotations

import datetime
import enum
import logging
from typing import Callable

from gateway.config.units import format_duration, format_size
from gateway.errors import StoreError
from gateway.store.bucket import Bucket
from gateway.store.index import BlockIndex, BucketState
from gateway.store.threads import StoreThreads

log = logging.getLogger("gateway.store")


class Access(enum.Enum):
    """How a process opens the store."""

    #: Reads only: no file is created, changed or removed (export, queries).
    READ = "read"
    #: Writes points; existing buckets keep their recorded size and retention (gateway write).
    WRITE = "write"
    #: The daemon: the configured size and retention are applied, and what they drop is
    #: logged; cutting a ring that holds data is refused.
    RUN = "run"
    #: As RUN, and cutting a ring that holds data is allowed (gateway bucket resize).
    RESIZE = "resize"


class SettingsRefused(StoreError):
    """The configuration asks for a change this kind of open may not make."""


def _duration(ns: int | None | bool) -> str:
    return format_duration(ns / 1e9) if ns else "none"


def _iso(ns: int) -> str:
    return datetime.datetime.fromtimestamp(ns / 1e9, datetime.timezone.utc).isoformat(
        timespec="seconds").replace("+00:00", "Z")


async def settle(b: Bucket, state: BucketState, index: BlockIndex, threads: StoreThreads,
                 access: Access, clock: Callable[[], int]) -> None:
    """Decides the bucket's size and retention for this open (``b.max_size``,
    ``b.retention_ns``) from what its ring records and what the configuration says, and
    records them in the ring when they change. Raises :class:`SettingsRefused`."""
    ring = b.ring
    recorded_size, recorded = ring.capacity, ring.retention_ns
    damage = ring.header_damage
    if damage:
        b.counters["ring_header_damage"] += 1
        log.error("bucket %s: %s of %s failed its checksum; the other copy was used%s",
                  b.name, " and ".join(damage), ring.path,
                  "" if access is Access.READ else " and the damaged one is rewritten")
    if access in (Access.READ, Access.WRITE):
        wanted_size, wanted_retention = b.max_size, b.retention_ns
        b.max_size = recorded_size
        b.retention_ns = recorded or None
        if recorded is False:
            log.info("bucket %s: its ring records no retention (written by an older gateway); "
                     "nothing expires until the daemon records one", b.name)
        elif access is Access.WRITE and (wanted_size, wanted_retention) != (recorded_size,
                                                                            recorded):
            log.info("bucket %s keeps its recorded size %s and retention %s (the daemon applies "
                     "the configuration's %s and %s)", b.name, format_size(recorded_size),
                     _duration(recorded), format_size(wanted_size), _duration(wanted_retention))
        if damage and access is Access.WRITE:
            await threads.on_store_thread(ring.configure, recorded_size,
                                          recorded if recorded else None)
        return
    size, retention = b.max_size, b.retention_ns
    if access is Access.RESIZE:  # the size only: the retention stays as recorded
        retention = b.retention_ns = recorded or None
    if size < recorded_size:
        blocks, points = await index.usage_beyond(state.id, size)
        holds_data = state.live_blocks > 0 or (index.created and b.ring_existed)
        if holds_data and access is not Access.RESIZE:
            new, old = format_size(size), format_size(recorded_size)
            raise SettingsRefused(
                f"bucket {b.name}: max_size {new} is smaller than its ring file ({old}), which "
                f"holds data ({blocks} blocks, {points} points lie beyond {new}); cutting it "
                f"needs `gateway bucket resize {b.name} --max-size {new}`, or set max_size back "
                f"to {old}")
        log.warning("bucket %s: ring file cut from %s to %s: %d blocks (%d points) beyond the "
                    "new end are dropped", b.name, format_size(recorded_size), format_size(size),
                    blocks, points)
    elif size > recorded_size:
        log.info("bucket %s: ring file grows from %s to %s", b.name, format_size(recorded_size),
                 format_size(size))
    if retention != recorded:
        blocks = points = 0
        drops = ""
        if retention:
            cutoff = clock() - retention
            blocks, points = await index.usage_older(state.id, cutoff)
            drops = f"; {blocks} blocks ({points} points) ending before {_iso(cutoff)} are dropped"
        was = "none recorded" if recorded is False else f"the recorded {_duration(recorded)}"
        (log.warning if blocks else log.info)(
            "bucket %s: retention %s from the configuration replaces %s%s", b.name,
            _duration(retention), was, drops)
    if size != recorded_size or retention != recorded or damage:
        await threads.on_store_thread(ring.configure, size, retention)
