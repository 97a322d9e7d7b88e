"""The task scheduler (component ``tasks``): runs each task's windows in order on the wall
clock, catches up after downtime and recomputes windows that late data changed.

For each task, one run at a time, in scheduled-time order:

- a run with scheduled time t executes once the clock reaches t + offset, with ``now()`` = t;
- after downtime every missed t newer than the catch-up horizon runs, oldest first, each once
  (older ones are skipped and recorded as such);
- a durable write into a bucket that the task reads, with points in the window of a run already
  done (and newer than the late-data horizon), marks that run dirty; dirty runs are run again,
  oldest first, before the next scheduled run. A rerun writes the same series and timestamps,
  which the store keeps once;
- a run that fails is recorded with its error and marked dirty, so it is retried with the next
  scheduled run (until it leaves the late-data horizon).

The state is saved after each run, so a process killed during a run runs it again on restart.
A save that fails (a full card) stops nothing: the state is kept in memory and saved after the
next run, the failure is logged and the component unhealthy until a save succeeds again.

A run compiles and runs its program on a query thread (:func:`gateway.query.on_query_thread`):
the event loop only serves its reads and writes, so a heavy task does not hold up ingest.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import time
from dataclasses import asdict
from typing import Callable

from gateway.bridge import LoopBridge, LoopUnavailable
from gateway.logs import Throttled
from gateway.query import FluxError, Limits, compile_query, on_query_thread, run_query_in_thread
from gateway.runtime import Component
from gateway.tasks.history import RunRecord, TaskRecords
from gateway.tasks.schedule import next_scheduled, previous_scheduled, run_covering
from gateway.tasks.spec import TaskSpec

log = logging.getLogger("gateway.tasks")

#: Longest sleep between checks of the clock (a wall-clock jump is noticed this soon).
MAX_SLEEP_S = 30.0
#: Most dirty windows one write may mark (a bulk import of old data is bounded by the horizon).
MAX_DIRTY = 100_000
#: Runs of each task this process keeps in memory for the status page (the history file has more).
RECENT_RUNS = 20


class TaskScheduler(Component):
    name = "tasks"

    def __init__(self, store, specs: list[TaskSpec], directory: str, settings, *,
                 clock: Callable[[], int] = time.time_ns) -> None:
        super().__init__()
        self.store = store
        self.specs = {s.name: s for s in specs}
        self.directory = directory
        self.settings = settings
        self.clock = clock
        self.records = {s.name: TaskRecords(directory, s.name, int(settings.history))
                        for s in specs}
        #: Runs since start by (task, status), and each task's newest runs (oldest first).
        self.run_counts: collections.Counter = collections.Counter()
        self.recent = {s.name: collections.deque(maxlen=RECENT_RUNS) for s in specs}
        self._save_failed = Throttled(log)
        self._wake: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None

    # ------------------------------------------------------------------ lifecycle

    def attach(self) -> None:
        """Listens to the store's writes (for late data)."""
        self.store.add_write_listener(self._on_write)

    def detach(self) -> None:
        self.store.remove_write_listener(self._on_write)

    async def start(self, context=None) -> None:
        await super().start(context)
        self.attach()
        self.spawn(self._loop(), "schedule")

    async def stop(self) -> None:
        self.detach()
        await super().stop()

    def health(self):
        h = super().health()
        h["tasks"] = {}
        for name, r in self.records.items():
            spec = self.specs[name]
            recent = self.recent[name]
            h["tasks"][name] = {
                "every_s": spec.every / 1e9 if spec.every else None,
                "cron": spec.cron.text if spec.cron else None,
                "last_scheduled": r.state.last_scheduled, "last_success": r.state.last_success,
                "dirty": len(r.state.dirty),
                "runs": {status: self.run_counts[(name, status)] for status in ("success", "failed")},
                "last_run": asdict(recent[-1]) if recent else None,
            }
        if self._save_failed.last:
            h["healthy"] = False
            h["last_error"] = self._save_failed.last
        h["recent_runs"] = sorted((dict(asdict(run), task=name) for name, runs in self.recent.items()
                                   for run in runs), key=lambda r: r["started"])
        return h

    async def _loop(self) -> None:
        while True:
            await self.run_due()
            now = self.clock()
            due = [self._next_due(s) for s in self.specs.values()]
            due = [d for d in due if d is not None]
            delay = MAX_SLEEP_S if not due else min(MAX_SLEEP_S, max(0.05, (min(due) - now) / 1e9))
            await asyncio.sleep(delay)

    def _next_due(self, spec: TaskSpec) -> int | None:
        last = self.records[spec.name].state.last_scheduled
        t = next_scheduled(spec, last if last is not None else self.clock() - spec.offset)
        return None if t is None else t + spec.offset

    # ------------------------------------------------------------------ late data

    def _on_write(self, bucket: str, lo: int, hi: int) -> None:
        now = self.clock()
        horizon = now - int(self.settings.late_data.ns)
        for spec in self.specs.values():
            if bucket not in spec.buckets:
                continue
            state = self.records[spec.name].state
            if state.last_scheduled is None:
                continue
            first = run_covering(spec, max(lo, horizon))
            dirty = set(state.dirty)
            t = first
            while t is not None and t <= state.last_scheduled and t <= run_covering(spec, hi) \
                    and len(dirty) < MAX_DIRTY:
                dirty.add(t)
                t = next_scheduled(spec, t)
            if len(dirty) != len(state.dirty):
                state.dirty = sorted(dirty)

    # ------------------------------------------------------------------ running

    async def run_due(self) -> int:
        """Runs every run that is due now, task by task, in order; returns how many ran."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        ran = 0
        async with self._lock:
            for spec in self.specs.values():
                ran += await self._advance(spec)
        return ran

    def _due(self, spec: TaskSpec, now: int) -> list[int]:
        records = self.records[spec.name]
        last = records.state.last_scheduled
        horizon = now - int(self.settings.catch_up.ns)
        newest = previous_scheduled(spec, now - spec.offset)
        if newest is None or (last is not None and newest <= last):
            return []
        if last is None:
            return [newest]   # a new task starts with the latest window, not history
        out = []
        t = next_scheduled(spec, max(last, horizon - 1))
        while t is not None and t <= newest:
            out.append(t)
            t = next_scheduled(spec, t)
        return out

    async def _advance(self, spec: TaskSpec) -> int:
        records = self.records[spec.name]
        state = records.state
        now = self.clock()
        due = self._due(spec, now)
        if not due:
            return 0
        last = state.last_scheduled
        if last is not None and due[0] != next_scheduled(spec, last):
            log.warning("task %s: runs from %s to %s are older than the catch-up horizon; "
                        "skipped", spec.name, next_scheduled(spec, last), due[0])
        ran = 0
        horizon = now - int(self.settings.late_data.ns)
        for t in sorted(set(state.dirty)):
            state.dirty = [d for d in state.dirty if d != t]
            if t >= horizon:
                await self.run_once(spec, t, "late data")
                ran += 1
        for t in due:
            reason = "scheduled" if t == due[-1] else "catch-up"
            record = await self._run(spec, t, reason)
            ran += 1
            if record.status != "success":
                state.dirty = sorted(set(state.dirty) | {t})   # retried with the next run
            state.last_scheduled = t
            # The run and the state it leaves in one save: a state file replaced costs the
            # card two syncs and a directory entry, once a minute for a 1-minute rollup.
            self._save(records, record)
        return ran

    async def run_once(self, spec: TaskSpec, scheduled_for: int, reason: str) -> RunRecord:
        """Runs the task for one scheduled time and records the run (its state is saved too)."""
        record = await self._run(spec, scheduled_for, reason)
        self._save(self.records[spec.name], record)
        return record

    async def _run(self, spec: TaskSpec, scheduled_for: int, reason: str) -> RunRecord:
        """Runs the task for one scheduled time; the caller saves the record."""
        records = self.records[spec.name]
        started = self.clock()
        record = RunRecord(scheduled_for, started, started, "success", reason)
        seconds = float(self.settings.run_timeout)
        bridge = LoopBridge(asyncio.get_running_loop(), seconds)
        limits = Limits(seconds=seconds)

        def run():
            query = compile_query(spec.source, now=scheduled_for, limits=limits,
                                  last_success=records.state.last_success)
            return run_query_in_thread(query, self.store, bridge, origin="task", writes=True,
                                       sender=("task", spec.name))

        try:
            try:
                _, ex = await asyncio.wait_for(on_query_thread(run), seconds + 1)
            except asyncio.CancelledError:   # stopping: the thread ends at its next check
                limits.cancel("the task scheduler is stopping")
                raise
            record.points_read, record.points_written = ex.points_read, ex.points_written
            records.state.last_success = max(records.state.last_success or scheduled_for,
                                             scheduled_for)
        except (FluxError, OSError, asyncio.TimeoutError, LoopUnavailable) as e:
            record.status = "failed"
            record.error = str(e) or type(e).__name__
            log.warning("task %s: run for %d failed: %s", spec.name, scheduled_for, record.error)
        except Exception as e:   # a bug: recorded and retried like any failure, the loop lives on
            record.status = "failed"
            record.error = f"internal error: {type(e).__name__}: {e}"
            log.exception("task %s: run for %d failed", spec.name, scheduled_for)
        record.finished = self.clock()
        self.run_counts[(spec.name, record.status)] += 1
        self.recent[spec.name].append(record)
        return record

    def _save(self, records: TaskRecords, record: RunRecord | None = None) -> None:
        """Appends the run to the task's history and saves its state."""
        try:
            if record is not None:
                records.append(record)
            records.save_state()
        except OSError as e:
            self._save_failed.failure("task state not saved (kept in memory, saved after the "
                                      "next run): %s", e)
        else:
            self._save_failed.success("task state saved again")


def task_directory(data_dir: str) -> str:
    return os.path.join(data_dir, "tasks")
