"""Options and configuration loading shared by the commands that open a data directory."""

from __future__ import annotations

import argparse
import logging
import pathlib

from gateway import config as cfg, logs

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
    if getattr(args, "data_dir", None):
        config.gateway.data_dir = str(pathlib.Path(args.data_dir))
    if getattr(args, "log_level", None) is None:
        logging.getLogger().setLevel(config.gateway.log_level.upper())
    return config
