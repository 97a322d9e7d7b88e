"""A process killed (SIGKILL) during a task run leaves rollups that, after the next run, equal
a recomputation from raw: the state is saved only after a run, so the killed run runs again
and overwrites what it had half written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from gateway.store import Store
from gateway.tasks.default import SOURCE
from gateway.tasks.scheduler import TaskScheduler
from gateway.tasks.spec import task_spec
from tasks_support import (MIN, T0, FakeClock, raw_batch, recomputed, rollup_rows, run, settings,
                           store_config)

OFFSET = 10 * 10**9
HERE = os.path.dirname(__file__)


def _history_lines(task_dir: str) -> int:
    try:
        with open(os.path.join(task_dir, "rollup-1m.history")) as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


@pytest.mark.slow
@pytest.mark.parametrize("kill_after_runs", [5, 60])
def test_sigkill_during_catch_up_then_next_run_equals_recomputation(tmp_path, kill_after_runs):
    data_dir, task_dir = str(tmp_path / "data"), str(tmp_path / "tasks")
    later = T0 + 3 * 3600 * 10**9 + OFFSET

    async def prepare():
        async with Store(data_dir, store_config()) as store:
            await store.write(raw_batch(T0 - MIN, T0 + 3 * 3600 * 10**9 + MIN))
            sched = TaskScheduler(store, [task_spec(SOURCE)], task_dir, settings(),
                                  clock=FakeClock(T0 + OFFSET))
            await sched.run_due()

    run(prepare())
    child = subprocess.Popen([sys.executable, os.path.join(HERE, "task_runner.py"), data_dir,
                              task_dir, str(later)])
    try:
        deadline = time.monotonic() + 120
        while _history_lines(task_dir) < 1 + kill_after_runs and child.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.005)
        assert child.poll() is None, "the catch-up finished before it could be killed"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(30)
    assert child.returncode == -signal.SIGKILL
    done_before_restart = _history_lines(task_dir) - 1

    async def restart():
        async with Store(data_dir, store_config()) as store:
            sched = TaskScheduler(store, [task_spec(SOURCE)], task_dir, settings(),
                                  clock=FakeClock(later))
            ran = await sched.run_due()
            return ran, await rollup_rows(store, T0 - MIN, T0 + 4 * 3600 * 10**9), \
                await recomputed(store, T0 - MIN, T0 + 3 * 3600 * 10**9)

    ran, rollup, want = run(restart())
    assert done_before_restart + ran >= 180        # the killed run (if any) ran again
    assert rollup == want
