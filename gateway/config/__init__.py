"""The gateway's configuration: one TOML file validated into typed sections.

``load_file(path)`` returns a :class:`Config` or raises :class:`ConfigError` listing every
problem with its line and key path; ``defaults()`` is the built-in configuration used when there
is no file at all.
"""

from __future__ import annotations

import logging
import pathlib
import re
import tomllib

from gateway.config.locate import key_lines, line_of
from gateway.config.model import (BucketConfig, Config, GatewaySection, HttpSection, StoreSection,
                                  cross_checks)
from gateway.config.render import render
from gateway.config.schema import Loader, Problem, setting
from gateway.config.secrets import Secret
from gateway.config.units import ByteSize, Duration, parse_duration, parse_size
from gateway.errors import ConfigError

log = logging.getLogger("gateway.config")

_TOML_LINE = re.compile(r"\(at line (\d+), column (\d+)\)")


def defaults() -> Config:
    """The built-in configuration (used when no file is given)."""
    return Config()


def load_text(text: str, filename: str = "<config>") -> Config:
    # A byte order mark (some Windows editors write one) is not TOML: "Invalid statement".
    text = text.removeprefix("\ufeff")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = _TOML_LINE.search(str(e))
        message = _TOML_LINE.sub("", str(e)).strip()
        problem = Problem("", f"invalid TOML: {message}", int(m.group(1)) if m else None)
        raise ConfigError(problem.format(filename), [problem]) from None
    loader = Loader()
    config = loader.load(Config, raw)
    if config is not None:
        for path, message in cross_checks(config, loader.loaded):
            loader.error(path, message)
    if loader.problems:
        lines = key_lines(text)
        problems = [Problem(p.path, p.message, line_of(lines, p.path)) for p in loader.problems]
        problems.sort(key=lambda p: (p.line or 0, p.path))
        raise ConfigError("\n".join(p.format(filename) for p in problems), problems)
    if loader.warnings:
        lines = key_lines(text)
        for p in loader.warnings:
            log.warning("%s", Problem(p.path, p.message, line_of(lines, p.path)).format(filename))
    return config


def load_file(path: str | pathlib.Path) -> Config:
    path = pathlib.Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except IsADirectoryError:
        raise ConfigError(f"configuration {path} is a directory, expected a TOML file") from None
    except OSError as e:
        raise ConfigError(f"cannot read configuration {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start})") from None
    return load_text(text, str(path))


__all__ = ["Config", "GatewaySection", "StoreSection", "HttpSection", "BucketConfig", "ConfigError",
           "Duration", "ByteSize", "Secret", "Problem", "Loader", "setting", "defaults", "load_file",
           "load_text", "render", "parse_duration", "parse_size"]
