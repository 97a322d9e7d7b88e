"""The ``gateway`` command line: one module per subcommand under :mod:`gateway.commands`.

Each command module exports ``add_parser(subparsers)``, which creates its subparser and sets
``func`` to a callable ``(args) -> exit code``. Errors print ``gateway: error: ...`` and exit 1;
the traceback is shown only with ``--debug``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from gateway import __version__, logs
from gateway.errors import GatewayError

#: Subcommands in the order ``gateway --help`` lists them.
COMMANDS = ("run", "check_config", "write", "export", "query", "task", "bucket", "token",
            "replication", "version")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway",
        description="Edge IoT gateway: reads sensors, stores their data in a compressed "
                    "fixed-size store, and forwards it upstream.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--log-level", choices=logs.LEVELS, default=None,
                        help="log level (default: the config's gateway.log_level, else info)")
    parser.add_argument("-V", "--version", action="version", version=f"gateway {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"gateway.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"gateway.commands.{name}":
                continue  # a command whose module is not part of this build
            raise
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.setup(args.log_level or "info", debug_tracebacks=args.debug)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1
    except (GatewayError, OSError) as e:
        if args.debug:
            raise
        print(f"gateway: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # a bug: still one line, unless the user asked for the traceback
        if args.debug:
            raise
        print(f"gateway: error: unexpected {type(e).__name__}: {e} (--debug shows the traceback)",
              file=sys.stderr)
        return 1
