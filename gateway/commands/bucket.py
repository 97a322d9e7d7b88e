"""``gateway bucket resize``: change the size of a bucket's ring file, on purpose.

Growing happens at daemon start as well; cutting a ring that holds data drops the blocks
beyond the new end, so only this command does it (the daemon refuses). The retention stays
as recorded. The daemon must be stopped: the command needs the store to itself.
"""

from __future__ import annotations

import asyncio
import os
import sys

from gateway.commands.common import add_store_options, load_config
from gateway.config.model import BucketConfig
from gateway.config.units import format_size, parse_size
from gateway.errors import StoreLocked


def add_parser(sub) -> None:
    p = sub.add_parser("bucket", help="manage a bucket of the store",
                       description="Manage a bucket of the store.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    r = actions.add_parser(
        "resize", help="change a bucket's ring size (cutting drops the oldest data beyond it)",
        description="Change the size of BUCKET's ring file to SIZE. Cutting a ring that holds "
                    "data drops (and counts as evicted) the blocks beyond the new end; the "
                    "daemon must be stopped. Set the same max_size in the configuration, or "
                    "the next daemon start refuses to cut or grows the ring again.")
    add_store_options(r)
    r.add_argument("bucket", metavar="BUCKET", help="the bucket")
    r.add_argument("--max-size", required=True, metavar="SIZE", type=parse_size,
                   help="the new size, e.g. 64MiB")
    r.set_defaults(func=run_resize)


async def _resize(config) -> None:
    from gateway.store import Access, Store

    # The store logs what the cut drops.
    async with Store(config.gateway.data_dir, config.store, access=Access.RESIZE):
        pass


def run_resize(args) -> int:
    config = load_config(args)
    ring = os.path.join(config.gateway.data_dir, "store", "buckets", args.bucket, "ring")
    if not os.path.exists(ring):
        print(f"gateway: error: bucket {args.bucket!r} has no ring file ({ring})",
              file=sys.stderr)
        return 1
    # Only this bucket is opened: the others, and their settings, are left alone.
    retention = config.store.buckets.get(args.bucket, BucketConfig()).retention
    config.store.buckets = {args.bucket: BucketConfig(args.max_size, retention)}
    try:
        asyncio.run(_resize(config))
    except StoreLocked as e:
        print(f"gateway: error: {e}; stop the daemon first", file=sys.stderr)
        return 1
    print(f"bucket {args.bucket}: the ring file is {format_size(int(args.max_size))}",
          file=sys.stderr)
    return 0
