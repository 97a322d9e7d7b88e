"""The query engine: a Flux subset (see docs/query.md) over the store.

>>> query = compile_query('from(bucket: "raw") |> range(start: -1h) |> mean()', now=0)
>>> query.plans[0].bucket, query.plans[0].start
('raw', -3600000000000)
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from gateway.query import ast, functions
from gateway.query.errors import FluxError
from gateway.query.executor import Executor, Result
from gateway.query.interpreter import Interpreter, Limits
from gateway.query.legacy import is_legacy, parse_legacy
from gateway.query.parser import parse
from gateway.query.planner import Plan, plan
from gateway.query.sink import StoreSink
from gateway.query.values import Stream

__all__ = ["FluxError", "Limits", "Query", "Result", "compile_query", "run_query", "parse_program",
           "run_query_in_thread", "on_query_thread", "queries_running"]

#: Threads that run queries for callers on the event loop (the control socket, tasks); a
#: web request runs its query on its own request thread.
QUERY_THREADS = 2


@dataclass
class Query:
    source: str
    plans: list[Plan]
    options: dict[str, Any] = field(default_factory=dict)
    interpreter: Interpreter | None = None


def parse_program(source: str) -> ast.Program:
    """The syntax tree of a Flux program or of a 2017 chained query."""
    return parse_legacy(source) if is_legacy(source) else parse(source)


def compile_query(source: str, now: int | None = None, limits: Limits | None = None,
                  last_success: int | None = None) -> Query:
    """Parses and evaluates ``source`` into plans (one per result); raises FluxError."""
    program = parse_program(source)
    interp = Interpreter(time.time_ns() if now is None else now, limits, functions.globals_())
    interp.last_success = last_success
    try:
        values = interp.run(program, functions.packages())
        plans = []
        for stmt, value in values:
            if isinstance(value, Stream):
                plans.append(plan(value.ops, stmt.pos))
        return Query(source, plans, interp.options, interp)
    except FluxError as e:
        raise e.with_source(source) from None
    except RecursionError:
        raise FluxError("the program nests too deeply") from None


async def run_query(query: Query, store, writer: StoreSink | None = None
                    ) -> tuple[list[Result], Executor]:
    """Runs every plan of ``query`` on ``store``; (results in program order, executor with
    its counters). Points of ``to()`` calls are durable when it returns. Raises FluxError."""
    ex = Executor(store, query.interpreter, writer)
    results = []
    try:
        for pl in query.plans:
            results.append(await ex.run(pl))
        if writer is not None:
            await writer.finish()
    except FluxError as e:
        raise e.with_source(query.source) from None
    except RecursionError:
        raise FluxError("the program nests too deeply") from None
    return results, ex


def run_query_in_thread(query: Query, store, bridge, *, origin: str, writes: bool = False,
                        sender=None) -> tuple[list[Result], Executor]:
    """:func:`run_query` from a thread that is not the store's event loop (a web request
    thread, a query thread): the engine's work runs on this thread, and only the store's reads
    (and with ``writes``, the writes of ``to()``) on the loop, through ``bridge``
    (:class:`gateway.store.proxy.StoreProxy`), so a heavy query never holds up ingest. Blocks
    until the query is done; raises FluxError, StoreError or LoopUnavailable. ``origin``
    ("http", "control", "task") is what :func:`queries_running` counts it under; ``sender``
    names the writer of ``to()`` to the group commit (:class:`StoreSink`)."""
    from gateway.store.proxy import StoreProxy

    proxy = StoreProxy(store, bridge)
    with _running_lock:
        _running[origin] += 1
    try:
        return asyncio.run(run_query(query, proxy, StoreSink(proxy, sender) if writes else None))
    finally:
        with _running_lock:
            _running[origin] -= 1


def queries_running() -> dict[str, int]:
    """Queries running on threads now, by origin (for /metrics)."""
    with _running_lock:
        return dict(_running)


_running: collections.Counter = collections.Counter()
_running_lock = threading.Lock()
_threads: concurrent.futures.ThreadPoolExecutor | None = None
_threads_lock = threading.Lock()


async def on_query_thread(fn, *args):
    """``fn(*args)`` on one of the :data:`QUERY_THREADS` query threads, awaited on the loop
    (``fn`` typically compiles and runs a query with :func:`run_query_in_thread`)."""
    global _threads
    with _threads_lock:
        if _threads is None:
            _threads = concurrent.futures.ThreadPoolExecutor(QUERY_THREADS, "gateway-query")
    return await asyncio.get_running_loop().run_in_executor(_threads, fn, *args)
