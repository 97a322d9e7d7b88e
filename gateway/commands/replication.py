"""``gateway replication status``: each stream's state, position, lag, backlog, hours of
outage left and last error. While the daemon runs the figures come from it (control socket);
otherwise from the store alone (positions and backlogs; the state is ``not running``)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys

from gateway.commands.common import add_store_options, load_config
from gateway.errors import StoreLocked


def add_parser(sub) -> None:
    p = sub.add_parser("replication", help="replication streams to upstreams",
                       description="Show the replication streams of the configuration.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    status = actions.add_parser(
        "status", help="per stream: state, position, lag, backlog, hours left, last error",
        description="Per stream and bucket: state, position (block sequence number), lag, "
                    "backlog, hours of outage the bucket can take at the current ingest rate, "
                    "and the last error.")
    add_store_options(status)
    status.add_argument("--json", action="store_true", help="print the figures as JSON")
    status.set_defaults(func=run)


async def _offline(config) -> dict:
    from gateway.replication.source import StoreSource
    from gateway.store import Store

    out = {}
    async with Store(config.gateway.data_dir, config.store) as store:
        source = StoreSource(store)
        for stream in config.replication:
            buckets = {}
            for bucket in stream.buckets:
                position = store.bucket(bucket).cursors.get(stream.name, 0)
                backlog = source.backlog(bucket, position)
                stats = backlog.pop("stats")
                buckets[bucket] = {"position": position,
                                   "write_position": store.replication_lsn(stream.name, bucket),
                                   "backlog_blocks": backlog["blocks"],
                                   "backlog_bytes": backlog["bytes"],
                                   "backlog_points": backlog["points"],
                                   "dropped_before_forwarding": stats["dropped_before_forwarding"]}
            out[stream.name] = {"name": stream.name, "kind": stream.kind, "url": stream.url,
                                "state": "not running", "buckets": buckets, "last_error": None}
    return out


def _figures(config) -> dict:
    from gateway.store.control import ControlClient

    try:
        return asyncio.run(_offline(config))
    except StoreLocked:
        client = ControlClient(os.path.join(config.gateway.data_dir, "store"))
        if not client.available():
            raise
        return client.replication_status()


def _when(ts) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hours(h) -> str:
    return "unlimited" if h is None else f"{h:.1f}"


def run(args) -> int:
    config = load_config(args)
    streams = _figures(config)
    if args.json:
        json.dump(streams, sys.stdout, indent=2, sort_keys=True)
        print()
        return 0
    if not streams:
        print("no replication streams configured ([[replication]] in the configuration)")
        return 0
    for s in streams.values():
        counters = s.get("counters", {})
        print(f"{s['name']} ({s['kind']} -> {s['url']}): {s['state']}")
        for bucket, b in s["buckets"].items():
            lag = b.get("lag_seconds")
            print(f"  {bucket}: position {b['position']} (WAL {b.get('write_position', 0)}), backlog {b['backlog_blocks']} blocks "
                  f"({b['backlog_points']} points, {b['backlog_bytes']} bytes)"
                  + (f", lag {lag:.1f} s" if lag is not None else "")
                  + (f", hours left {_hours(b['hours_left'])}" if "hours_left" in b else "")
                  + f", dropped before forwarding {b['dropped_before_forwarding']}")
        if counters:
            print(f"  sent {counters.get('points_sent', 0)} points in "
                  f"{counters.get('batches_sent', 0)} batches ({counters.get('bytes_sent', 0)} "
                  f"bytes), errors {counters.get('errors', 0)}, rejected "
                  f"{counters.get('rejected_points', 0)}, last ack {_when(s.get('last_ack_at'))}")
        if s.get("last_error"):
            print(f"  last error ({_when(s.get('last_error_at'))}): {s['last_error']}")
    return 0
