"""A task as configured: its Flux program and the schedule its ``option task`` declares."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.errors import ConfigError
from gateway.query import FluxError, compile_query
from gateway.query.values import Duration
from gateway.tasks.schedule import Cron, CronError


class TaskSpecError(ConfigError):
    """A task's program does not parse, or its ``option task`` is missing or wrong."""


@dataclass(frozen=True)
class TaskSpec:
    name: str
    source: str
    every: int | None        # ns
    offset: int              # ns
    cron: Cron | None
    buckets: frozenset[str]  # buckets the program reads (late data there recomputes windows)

    @property
    def period(self) -> int | None:
        """The span a run covers: every, or for cron the interval to the next firing."""
        return self.every


def _ns(value, what: str, name: str) -> int:
    if not isinstance(value, Duration) or value.months:
        raise TaskSpecError(f"task {name!r}: option task {what} must be a duration in fixed "
                            f"units (no mo or y)")
    return value.ns


def task_spec(source: str) -> TaskSpec:
    """Compiles the program (no store needed); raises TaskSpecError naming the task and the
    line and column of a Flux error."""
    try:
        query = compile_query(source, now=0)
    except FluxError as e:
        name = _name_guess(source)
        where = f"task {name!r}" if name else "task"
        raise TaskSpecError(f"{where}: {e}") from None
    option = query.options.get("task")
    if not isinstance(option, dict):
        raise TaskSpecError("task: the program needs option task = {name: ..., every: ...}")
    name = option.get("name")
    if not isinstance(name, str) or not name or not name.replace("-", "").replace("_", "").isalnum():
        raise TaskSpecError(f"task: option task name must be letters, digits, '-' and '_', got {name!r}")
    unknown = set(option) - {"name", "every", "offset", "cron", "concurrency", "retry"}
    if unknown:
        raise TaskSpecError(f"task {name!r}: option task has no field {sorted(unknown)[0]!r}")
    every = option.get("every")
    cron = option.get("cron")
    if (every is None) == (cron is None):
        raise TaskSpecError(f"task {name!r}: option task needs every or cron (one of them)")
    offset = _ns(option.get("offset", Duration(0, 0)), "offset", name)
    if offset < 0:
        raise TaskSpecError(f"task {name!r}: option task offset must not be negative")
    if every is not None:
        every_ns = _ns(every, "every", name)
        if every_ns < 10**9:
            raise TaskSpecError(f"task {name!r}: option task every must be at least 1s")
        cron_spec = None
    else:
        if not isinstance(cron, str):
            raise TaskSpecError(f"task {name!r}: option task cron must be a string")
        try:
            cron_spec = Cron(cron)
        except CronError as e:
            raise TaskSpecError(f"task {name!r}: option task cron: {e}") from None
        every_ns = None
    if not query.plans:
        raise TaskSpecError(f"task {name!r}: the program reads nothing (no from())")
    return TaskSpec(name, source, every_ns, offset, cron_spec,
                    frozenset(p.bucket for p in query.plans))


def _name_guess(source: str) -> str | None:
    import re

    m = re.search(r'option\s+task\s*=\s*\{[^}]*name\s*:\s*"([^"\\]{1,64})"', source)
    return m.group(1) if m else None
