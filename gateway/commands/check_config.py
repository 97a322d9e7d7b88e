"""``gateway check-config FILE``: validate a configuration file and print the effective config."""

from __future__ import annotations

import sys

from gateway import config as cfg
from gateway.errors import ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "check-config", help="validate a configuration file",
        description="Validate FILE. Prints the effective configuration (defaults filled in, "
                    "secrets hidden) as TOML and exits 0, or prints every error as "
                    "FILE:LINE: key.path: message and exits 1.")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=run)


def run(args) -> int:
    try:
        config = cfg.load_file(args.file)
    except ConfigError as e:
        if e.problems:
            for problem in e.problems:
                print(problem.format(args.file), file=sys.stderr)
            print(f"gateway: error: {len(e.problems)} problem(s) in {args.file}", file=sys.stderr)
            return 1
        raise
    sys.stdout.write(cfg.render(config))
    return 0
