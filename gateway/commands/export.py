"""``gateway export``: print a bucket's points as line protocol."""

from __future__ import annotations

import asyncio
import os
import sys

from gateway.commands.common import add_store_options, load_config


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export", help="print a bucket's points as line protocol",
        description="Print the points of a bucket as InfluxDB line protocol with nanosecond "
                    "timestamps, series by series in time order: the values bit for bit as "
                    "written (one point per series and timestamp: the last written). When the "
                    "daemon runs, the points come through it.")
    add_store_options(p)
    p.add_argument("--bucket", default="raw", help="bucket to read (default: raw)")
    p.add_argument("--start", metavar="TIME",
                   help="first time included: ns since the epoch or RFC 3339 (default: all)")
    p.add_argument("--stop", metavar="TIME",
                   help="first time excluded: ns since the epoch or RFC 3339 (default: all)")
    p.add_argument("--measurement", metavar="NAME", help="only this measurement")
    p.set_defaults(func=run)


async def _export_local(config, args, start, stop, out):
    from gateway.store import Access, Store
    from gateway.store.transfer import ExportReport, export_lines

    report = ExportReport()
    # Read-only: nothing in the data directory changes (works on a read-only mount too).
    async with Store(config.gateway.data_dir, config.store, access=Access.READ) as store:
        store.bucket(args.bucket)
        async for text in export_lines(store, args.bucket, start, stop, args.measurement, report):
            out.write(text)
    return report


def run(args) -> int:
    from gateway.store.control import with_store
    from gateway.store.transfer import parse_time

    config = load_config(args)
    try:
        start, stop = parse_time(args.start), parse_time(args.stop)
    except ValueError as e:
        print(f"gateway: error: {e}", file=sys.stderr)
        return 1
    out = sys.stdout.buffer
    try:
        report = with_store(
            os.path.join(config.gateway.data_dir, "store"),
            lambda: asyncio.run(_export_local(config, args, start, stop, out)),
            lambda client: client.export(args.bucket, start, stop, args.measurement, out))
    finally:
        out.flush()
    if report.skipped_nonfinite:
        print(f"gateway: warning: {report.skipped_nonfinite} NaN or infinite values have no line "
              f"protocol form and were left out", file=sys.stderr)
    return 0
