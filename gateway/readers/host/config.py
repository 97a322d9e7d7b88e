"""Configuration of the host reader (see sample.toml)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config.schema import positive, setting
from gateway.config.units import Duration, parse_duration
from gateway.readers.precision import derived_precision, precision_problem


def _absolute(value: str) -> None:
    if not value.startswith("/"):
        raise ValueError(f"must be an absolute path, got {value!r}")


def _absolute_paths(values: list[str]) -> None:
    for v in values:
        _absolute(v)


@dataclass
class Config:
    interval: Duration = setting(default_factory=lambda: parse_duration("30s"), check=positive)
    precision: Duration | None = setting(
        None, doc="the points' times are stored rounded to this; default: the coarsest of 1s, "
                  "1ms, 1us at most half the interval (1s at 2s and more)")
    filesystems: list[str] = setting(default_factory=lambda: ["/"], check=_absolute_paths,
                                     doc="mount points to report; the data directory is always added")
    interfaces: list[str] = setting(default_factory=list,
                                    doc="network interfaces to report; empty means all but lo")
    proc_path: str = setting("/proc", check=_absolute, doc="where procfs is mounted")
    sys_path: str = setting("/sys", check=_absolute, doc="where sysfs is mounted")

    def __post_init__(self) -> None:
        self.precision = self.effective_precision   # shown by check-config

    @property
    def effective_precision(self) -> Duration:
        """The precision of the points' times: configured, or from the interval (collections
        are at least one interval apart: the reader sleeps that long after each)."""
        if self.precision is not None:
            return self.precision
        return derived_precision(float(self.interval))

    def validate(self):
        if self.precision is not None:
            problem = precision_problem(self.precision, float(self.interval),
                                        "between two collections (the interval)")
            if problem:
                yield "precision", problem
