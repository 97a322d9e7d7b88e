"""``gateway write``: import line protocol into a bucket of the local store."""

from __future__ import annotations

import asyncio
import os
import sys

from gateway.commands.common import add_store_options, load_config, open_input
from gateway.lineprotocol import PRECISIONS

_READ = 1 << 20


def add_parser(sub) -> None:
    p = sub.add_parser(
        "write", help="import line protocol into a bucket",
        description="Import InfluxDB line protocol from FILE (or standard input with -) into a "
                    "bucket of the store. Bad lines are reported with their line numbers and "
                    "skipped; every good line is stored. When the daemon runs, the points go "
                    "through it. Exit status 1 when any line was bad.")
    add_store_options(p)
    p.add_argument("--bucket", default="raw", help="bucket to write to (default: raw)")
    p.add_argument("--precision", choices=list(PRECISIONS), default="ns",
                   help="unit of the timestamps in the input (default: ns)")
    p.add_argument("file", metavar="FILE", help="line protocol file, or - for standard input")
    p.set_defaults(func=run)


def _pieces(f):
    while True:
        piece = f.read(_READ)
        if not piece:
            return
        yield piece


async def _write_local(config, args, f):
    from gateway.store import Access, Store
    from gateway.store.transfer import import_lines

    # Buckets keep their recorded size and retention: a write never expires or cuts data.
    async with Store(config.gateway.data_dir, config.store, access=Access.WRITE) as store:
        return await import_lines(store, args.bucket, _pieces(f), args.precision)


def run(args) -> int:
    from gateway.store.control import with_store
    from gateway.store.transfer import ImportReport

    config = load_config(args)
    name = "<stdin>" if args.file == "-" else args.file
    f = sys.stdin.buffer if args.file == "-" else open_input(args.file)
    try:
        report = with_store(
            os.path.join(config.gateway.data_dir, "store"),
            lambda: asyncio.run(_write_local(config, args, f)),
            lambda client: ImportReport.from_dict(client.write(args.bucket, args.precision,
                                                               _pieces(f))))
    finally:
        if f is not sys.stdin.buffer:
            f.close()
    for line, column, reason in report.errors:
        where = f"{name} line {line}, column {column}" if line else name
        print(f"gateway: error: {reason} ({where})", file=sys.stderr)
    if report.bad_lines > len([e for e in report.errors if e[0]]):
        print(f"gateway: error: {report.bad_lines} bad lines in all ({name})", file=sys.stderr)
    print(f"wrote {report.points} points from {report.lines - report.bad_lines} lines to bucket "
          f"{args.bucket}" + (f"; {report.bad_lines} bad lines skipped" if report.bad_lines else "")
          + (f"; {report.refused} points refused" if report.refused else ""), file=sys.stderr)
    return 1 if report.bad_lines or report.refused else 0
