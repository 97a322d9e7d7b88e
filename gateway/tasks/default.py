"""The built-in task: 1-minute mean, min, max and count of every numeric field of ``raw``, in
``rollup``. A rollup series keeps the measurement and tags of its raw series; its field is the
raw field with ``_mean``, ``_min``, ``_max`` or ``_count`` appended; its timestamp is the start
of the minute. The count lets coarser rollups (of rollups) weight each minute correctly across
gaps."""

from __future__ import annotations

NAME = "rollup-1m"

_PART = ('data |> aggregateWindow(every: 1m, fn: {fn}, timeSrc: "_start", createEmpty: false)\n'
         '  |> map(fn: (r) => ({{r with _field: r._field + "_{fn}"}}))\n'
         '  |> to(bucket: "rollup")\n')

SOURCE = (
    'import "types"\n\n'
    f'option task = {{name: "{NAME}", every: 1m, offset: 10s}}\n\n'
    'data = from(bucket: "raw")\n'
    '  |> range(start: -task.every)\n'
    '  |> filter(fn: (r) => types.isNumeric(v: r._value))\n\n'
    + "\n".join(_PART.format(fn=fn) for fn in ("mean", "min", "max", "count"))
)


def specs(config) -> list:
    """Every task of the configuration: the built-in one (unless turned off) and [[tasks]]."""
    from gateway.tasks.spec import TaskSpecError, task_spec

    out = [task_spec(SOURCE)] if config.scheduler.default_rollup else []
    for i, task in enumerate(config.tasks):
        spec = task_spec(task.source())
        if any(s.name == spec.name for s in out):
            raise TaskSpecError(f"tasks[{i}]: task name {spec.name!r} is used twice")
        out.append(spec)
    return out
