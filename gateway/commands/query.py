"""``gateway query``: run a Flux query (docs/query.md) on the store and print the result."""

from __future__ import annotations

import asyncio
import os
import sys

from gateway.commands.common import add_store_options, load_config


def add_parser(sub) -> None:
    p = sub.add_parser(
        "query", help="run a Flux query and print the result",
        description="Run a query in the Flux subset described in docs/query.md (or the 2017 "
                    "chained form) and print its tables. The program comes from the argument, "
                    "from -f FILE, or from standard input. A query only reads; when the daemon "
                    "runs, it is answered through the daemon.")
    add_store_options(p)
    p.add_argument("flux", nargs="?", metavar="FLUX", help="the program ('-' or absent: stdin)")
    p.add_argument("-f", "--file", metavar="FILE", help="read the program from FILE")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table",
                   help="table (default), csv (InfluxDB's annotated CSV) or json (JSON lines)")
    p.set_defaults(func=run)


def _source(args) -> str:
    if args.file and args.flux not in (None, "-"):
        raise SystemExit("gateway: error: give the program either as FLUX or with -f, not both")
    if args.file:
        with open(args.file, encoding="utf-8", errors="surrogateescape") as f:
            return f.read()
    if args.flux not in (None, "-"):
        return args.flux
    return sys.stdin.read()


async def _query_local(config, source: str, fmt: str, out) -> None:
    from gateway.query import compile_query, run_query
    from gateway.query.output import render
    from gateway.store import Access, Store

    query = compile_query(source)   # a bad program fails before the store is opened
    # Read-only: nothing in the data directory changes (works on a read-only mount too).
    async with Store(config.gateway.data_dir, config.store, access=Access.READ) as store:
        results, _ = await run_query(query, store)
    for text in render(results, fmt):
        out.write(text.encode("utf-8", "surrogateescape"))


def run(args) -> int:
    from gateway.store.control import with_store

    config = load_config(args)
    source = _source(args)
    out = sys.stdout.buffer
    try:
        with_store(os.path.join(config.gateway.data_dir, "store"),
                   lambda: asyncio.run(_query_local(config, source, args.format, out)),
                   lambda client: client.query(source, args.format, out))
    finally:
        out.flush()
    return 0
