"""Configuration of the host reader (see sample.toml)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config.schema import positive, setting
from gateway.config.units import Duration, parse_duration


def _absolute(value: str) -> None:
    if not value.startswith("/"):
        raise ValueError(f"must be an absolute path, got {value!r}")


def _absolute_paths(values: list[str]) -> None:
    for v in values:
        _absolute(v)


@dataclass
class Config:
    interval: Duration = setting(default_factory=lambda: parse_duration("30s"), check=positive)
    filesystems: list[str] = setting(default_factory=lambda: ["/"], check=_absolute_paths,
                                     doc="mount points to report; the data directory is always added")
    interfaces: list[str] = setting(default_factory=list,
                                    doc="network interfaces to report; empty means all but lo")
    proc_path: str = setting("/proc", check=_absolute, doc="where procfs is mounted")
    sys_path: str = setting("/sys", check=_absolute, doc="where sysfs is mounted")
