"""``gateway task``: list the downsampling tasks, run one by hand, show its run history."""

from __future__ import annotations

import asyncio
import sys
import time

from gateway.commands.common import add_store_options, load_config
from gateway.errors import GatewayError


def add_parser(sub) -> None:
    p = sub.add_parser("task", help="list, run or show the history of downsampling tasks",
                       description="The tasks are the built-in 1-minute rollup and the [[tasks]] "
                                   "of the configuration (docs/query.md). 'run' needs the store "
                                   "to itself (stop the daemon first).")
    what = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = what.add_parser("list", help="the tasks, their schedule and last runs")
    add_store_options(listing)
    run = what.add_parser("run", help="run a task now, for its latest window or for a range")
    add_store_options(run)
    run.add_argument("name")
    run.add_argument("--from", dest="start", metavar="TIME",
                     help="first scheduled time to run (ns or RFC 3339); with --to")
    run.add_argument("--to", dest="stop", metavar="TIME", help="last scheduled time to run")
    hist = what.add_parser("history", help="the recorded runs of a task")
    add_store_options(hist)
    hist.add_argument("name")
    p.set_defaults(func=main)


def _fmt(ns) -> str:
    if ns is None:
        return "-"
    from gateway.query.values import format_time
    return format_time(ns)


def _setup(args):
    from gateway.tasks.default import specs
    from gateway.tasks.history import TaskRecords
    from gateway.tasks.scheduler import task_directory

    config = load_config(args)
    task_specs = {s.name: s for s in specs(config)}
    directory = task_directory(config.gateway.data_dir)
    if getattr(args, "name", None) is not None and args.name not in task_specs:
        raise GatewayError(f"no task named {args.name!r} (tasks: {', '.join(task_specs) or 'none'})")
    records = {n: TaskRecords(directory, n, int(config.scheduler.history)) for n in task_specs}
    return config, task_specs, directory, records


def main(args) -> int:
    config, task_specs, directory, records = _setup(args)
    out = sys.stdout
    if args.action == "list":
        out.write(f"{'NAME':<20} {'SCHEDULE':<18} {'LAST RUN (scheduled)':<24} "
                  f"{'LAST SUCCESS':<24} DIRTY\n")
        for name, spec in task_specs.items():
            sched = f"cron {spec.cron.text}" if spec.cron else f"every {spec.every // 10**9}s"
            if spec.offset:
                sched += f" +{spec.offset // 10**9}s"
            st = records[name].state
            out.write(f"{name:<20} {sched:<18} {_fmt(st.last_scheduled):<24} "
                      f"{_fmt(st.last_success):<24} {len(st.dirty)}\n")
        return 0
    if args.action == "history":
        out.write(f"{'SCHEDULED FOR':<24} {'STARTED':<24} {'SECONDS':>8} {'STATUS':<8} "
                  f"{'REASON':<10} {'READ':>9} {'WRITTEN':>9} ERROR\n")
        for r in records[args.name].runs():
            out.write(f"{_fmt(r.scheduled_for):<24} {_fmt(r.started):<24} "
                      f"{(r.finished - r.started) / 1e9:>8.3f} {r.status:<8} {r.reason:<10} "
                      f"{r.points_read:>9} {r.points_written:>9} {r.error or ''}\n")
        return 0
    return asyncio.run(_run(config, task_specs[args.name], directory, args))


async def _run(config, spec, directory, args) -> int:
    from gateway.store import Store
    from gateway.store.transfer import parse_time
    from gateway.tasks.schedule import next_scheduled, previous_scheduled
    from gateway.tasks.scheduler import TaskScheduler

    try:
        start, stop = parse_time(args.start), parse_time(args.stop)
    except ValueError as e:
        raise GatewayError(str(e)) from None
    if (start is None) != (stop is None):
        raise GatewayError("give both --from and --to, or neither")
    if start is None:
        times = [previous_scheduled(spec, time.time_ns() - spec.offset)]
    else:
        times, t = [], previous_scheduled(spec, start - 1)
        t = next_scheduled(spec, t)
        while t is not None and t <= stop:
            times.append(t)
            if len(times) > 100_000:
                raise GatewayError("more than 100000 runs in that range")
            t = next_scheduled(spec, t)
    failed = 0
    async with Store(config.gateway.data_dir, config.store) as store:
        scheduler = TaskScheduler(store, [spec], directory, config.scheduler)
        for t in times:
            r = await scheduler.run_once(spec, t, "manual")
            print(f"{_fmt(t)} {r.status} read {r.points_read} wrote {r.points_written}"
                  + (f": {r.error}" if r.error else ""))
            failed += r.status != "success"
    return 1 if failed else 0
