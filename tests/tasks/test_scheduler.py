"""Tasks on a fake clock: catch-up runs every missed window once and in order, a late point
recomputes exactly its window, a failing run is recorded and retried, reruns never duplicate."""

from __future__ import annotations

import os

import pytest

from gateway.config import load_file
from gateway.errors import ConfigError
from gateway.store import Store
from gateway.tasks.default import SOURCE
from gateway.tasks.scheduler import TaskScheduler
from gateway.tasks.spec import task_spec
from small_disk import fill, mounted_tmpfs
from tasks_support import (MIN, T0, FakeClock, raw_batch, recomputed, rollup_rows, run, settings,
                           store_config)

OFFSET = 10 * 10**9   # the built-in task runs 10 s after each minute


def test_catch_up_after_three_hours_runs_every_missed_window_once_in_order(tmp_path):
    clock = FakeClock(T0 + OFFSET)

    async def scenario():
        async with Store(str(tmp_path / "data"), store_config()) as store:
            sched = TaskScheduler(store, [task_spec(SOURCE)], str(tmp_path / "tasks"), settings(),
                                  clock=clock)
            sched.attach()
            await store.write(raw_batch(T0 - MIN, T0 + 3 * 3600 * 10**9 + MIN))
            assert await sched.run_due() == 1          # a new task starts with the latest window
            clock.now = T0 + 3 * 3600 * 10**9 + OFFSET  # three hours later
            ran = await sched.run_due()
            assert await sched.run_due() == 0           # nothing twice
            runs = sched.records["rollup-1m"].runs()
            return ran, runs, await rollup_rows(store, T0 - MIN, T0 + 4 * 3600 * 10**9), \
                await recomputed(store, T0 - MIN, T0 + 3 * 3600 * 10**9)

    ran, runs, rollup, want = run(scenario())
    assert ran == 180
    times = [r.scheduled_for for r in runs]
    assert times == [T0 + k * MIN for k in range(181)]          # each window once, in order
    assert [r.reason for r in runs[1:-1]] == ["catch-up"] * 179 and runs[-1].reason == "scheduled"
    assert all(r.status == "success" and r.points_written == 8 for r in runs[1:])
    assert rollup == want                                        # equals a recomputation


def test_a_late_point_recomputes_exactly_its_window(tmp_path):
    clock = FakeClock(T0 + OFFSET)

    async def scenario():
        async with Store(str(tmp_path / "data"), store_config()) as store:
            sched = TaskScheduler(store, [task_spec(SOURCE)], str(tmp_path / "tasks"), settings(),
                                  clock=clock)
            sched.attach()
            await store.write(raw_batch(T0 - 10 * MIN, T0 + 10 * MIN))
            await sched.run_due()
            for k in range(1, 11):
                clock.now = T0 + k * MIN + OFFSET
                await sched.run_due()
            before = await rollup_rows(store, T0 - 10 * MIN, T0 + 10 * MIN)
            late = raw_batch(T0 + 3 * MIN + 5 * 10**9, T0 + 3 * MIN + 6 * 10**9)  # one instant
            await store.write(late)
            dirty = list(sched.records["rollup-1m"].state.dirty)
            clock.now = T0 + 11 * MIN + OFFSET
            await sched.run_due()
            after = await rollup_rows(store, T0 - 10 * MIN, T0 + 12 * MIN)
            return dirty, sched.records["rollup-1m"].runs(), before, after, \
                await recomputed(store, T0 - MIN, T0 + 11 * MIN)

    dirty, runs, before, after, want = run(scenario())
    window = T0 + 4 * MIN               # the run scheduled at 4 min covers [3 min, 4 min)
    assert dirty == [window]
    assert [(r.scheduled_for, r.reason) for r in runs[-2:]] == [(window, "late data"),
                                                                 (T0 + 11 * MIN, "scheduled")]
    changed = {k for k in after if k in before and after[k] != before[k]}
    assert changed and {k[3] for k in changed} == {T0 + 3 * MIN}   # rows of that minute only
    assert after == {k: v for k, v in want.items() if k[3] >= T0 - MIN}
    assert len([k for k in after if k[3] == T0 + 3 * MIN]) == 8     # rerun: same rows, no copies


def test_a_failing_run_is_recorded_and_retried_with_the_next_run(tmp_path):
    clock = FakeClock(T0)
    source = ('option task = {name: "t", every: 1m}\n'
              'from(bucket: "raw") |> range(start: -task.every) '
              '|> aggregateWindow(every: 1m, fn: count, createEmpty: false) |> to(bucket: "nope")')

    async def scenario():
        async with Store(str(tmp_path / "data"), store_config()) as store:
            sched = TaskScheduler(store, [task_spec(source)], str(tmp_path / "tasks"), settings(),
                                  clock=clock)
            await store.write(raw_batch(T0 - MIN, T0 + 2 * MIN))
            await sched.run_due()
            clock.now = T0 + MIN
            await sched.run_due()
            return sched.records["t"].runs()

    runs = run(scenario())
    assert [(r.scheduled_for, r.status, r.reason) for r in runs] == [
        (T0, "failed", "scheduled"), (T0, "failed", "late data"), (T0 + MIN, "failed", "scheduled")]
    assert "bucket 'nope' does not exist" in runs[0].error and "line 2, column" in runs[0].error


def test_a_full_card_under_the_task_state_stops_nothing_and_shows_on_health(tmp_path):
    # The state and history cannot be saved: the runs go on, the state is kept in memory and
    # saved once there is space again; health says why meanwhile.
    clock = FakeClock(T0 + OFFSET)
    tasks = tmp_path / "tasks"
    tasks.mkdir()

    async def scenario(card):
        async with Store(str(tmp_path / "data"), store_config()) as store:
            sched = TaskScheduler(store, [task_spec(SOURCE)], card, settings(), clock=clock)
            sched.attach()
            await store.write(raw_batch(T0 - MIN, T0 + 10 * MIN))
            await sched.run_due()
            assert sched.health().get("healthy", True)
            filler = fill(card)
            for k in (1, 2):
                clock.now = T0 + k * MIN + OFFSET
                assert await sched.run_due() == 1
            full = sched.health()
            os.unlink(filler)
            clock.now = T0 + 3 * MIN + OFFSET
            assert await sched.run_due() == 1
            return full, sched.health()

    with mounted_tmpfs(tasks, "64k") as (card, error):
        if card is None:
            pytest.skip(f"cannot mount a small tmpfs: {error}")
        full, after = run(scenario(card))
        saved = TaskScheduler(None, [task_spec(SOURCE)], card, settings(), clock=clock).records
    assert full["healthy"] is False and "No space left on device" in full["last_error"]
    assert full["tasks"]["rollup-1m"]["runs"] == {"success": 3, "failed": 0}
    assert after.get("healthy", True) and after.get("last_error") is None
    assert saved["rollup-1m"].state.last_scheduled == T0 + 3 * MIN


def test_a_task_that_does_not_parse_is_a_config_error_naming_task_line_and_column(tmp_path):
    cfg = tmp_path / "gateway.toml"
    cfg.write_text('[[tasks]]\nflux = """\noption task = {name: "hourly", every: 1h}\n'
                   'from(bucket: "raw") |> range(start: -1h) |> nope()\n"""\n')
    with pytest.raises(ConfigError) as info:
        load_file(str(cfg))
    text = str(info.value) + "".join(p.message for p in info.value.problems)
    assert "task 'hourly': undefined identifier 'nope' (line 2, column 45)" in text
    assert [p.path for p in info.value.problems] == ["tasks[0].flux"]


def test_history_is_bounded(tmp_path):
    clock = FakeClock(T0 + OFFSET)

    async def scenario():
        async with Store(str(tmp_path / "data"), store_config()) as store:
            sched = TaskScheduler(store, [task_spec(SOURCE)], str(tmp_path / "tasks"),
                                  settings(history=5), clock=clock)
            await sched.run_due()
            clock.now += 30 * MIN
            await sched.run_due()
            with open(sched.records["rollup-1m"].history_path) as f:
                lines = f.read().splitlines()
            return sched.records["rollup-1m"].runs(), lines

    runs, lines = run(scenario())
    assert len(runs) == 5 and runs[-1].scheduled_for == T0 + 30 * MIN
    assert len(lines) < 10


def test_a_scheduled_run_saves_its_record_and_state_once(tmp_path, monkeypatch):
    clock = FakeClock(T0 + OFFSET)
    replaced = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: replaced.append(b) or real_replace(a, b))

    async def scenario():
        async with Store(str(tmp_path / "data"), store_config()) as store:
            sched = TaskScheduler(store, [task_spec(SOURCE)], str(tmp_path / "tasks"), settings(),
                                  clock=clock)
            await sched.run_due()
            clock.now += 3 * MIN
            await sched.run_due()
            return sched.records["rollup-1m"]

    records = run(scenario())
    # four runs, each one state file replaced, holding where the runs got to
    assert replaced.count(records.state_path) == 4
    assert len(records.runs()) == 4
    assert records._load_state().last_scheduled == T0 + 3 * MIN
