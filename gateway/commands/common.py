"""Options and configuration loading shared by the commands that open a data directory."""

from __future__ import annotations

import argparse
import logging
import pathlib

from gateway import config as cfg, logs
from gateway.errors import GatewayError, StoreError

log = logging.getLogger("gateway")


def add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE",
                        help="configuration file (TOML); without it the built-in defaults apply")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="data directory (overrides gateway.data_dir from the configuration)")
    # Also accepted after the command; SUPPRESS keeps a value given before it.
    parser.add_argument("--log-level", choices=logs.LEVELS, default=argparse.SUPPRESS,
                        help="log level (default: the config's gateway.log_level)")


def load_config(args: argparse.Namespace) -> cfg.Config:
    """The configuration named by ``--config`` (or the defaults), with ``--data-dir`` applied."""
    config = cfg.load_file(args.config) if args.config else cfg.defaults()
    option = "--data-dir" if getattr(args, "data_dir", None) else "gateway.data_dir"
    if getattr(args, "data_dir", None):
        config.gateway.data_dir = str(pathlib.Path(args.data_dir))
    check_data_dir(config.gateway.data_dir, option)
    if getattr(args, "log_level", None) is None:
        logging.getLogger().setLevel(config.gateway.log_level.upper())
    return config


def check_data_dir(path: str, option: str) -> None:
    """Refuses a data directory that is a file or lies under a file, naming what was expected
    (rather than "[Errno 17] File exists" from deep inside the store)."""
    wanted = pathlib.Path(path)
    for candidate in (wanted, *wanted.parents):
        if not candidate.exists():
            continue   # made when the store opens
        if not candidate.is_dir():
            where = "" if candidate == wanted else f": {candidate} is a file"
            what = "is a file" if candidate == wanted else "lies under a file"
            raise StoreError(f"{option} {path} {what}{where}, expected a directory")
        return


def open_input(path: str):
    """A line protocol input file opened for reading, with errors that say what was expected."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise GatewayError(f"input file {path} does not exist") from None
    except IsADirectoryError:
        raise GatewayError(f"input {path} is a directory, expected a line protocol file") from None
