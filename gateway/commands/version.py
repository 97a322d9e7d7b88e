"""``gateway version``: the version of the gateway and of its C core."""

from __future__ import annotations

import platform

from gateway import __version__


def add_parser(sub) -> None:
    p = sub.add_parser("version", help="print the version", description="Print the gateway's version.")
    p.set_defaults(func=run)


def run(args) -> int:
    print(f"gateway {__version__} (python {platform.python_version()}, {platform.machine()})")
    return 0
