"""Logging: one line per event on stderr.

Under systemd (``JOURNAL_STREAM`` set) each line starts with its syslog priority (``<3>``), which
journald turns into the entry's level, and carries no timestamp of its own; elsewhere lines start
with a UTC timestamp.
"""

from __future__ import annotations

import logging
import os
import sys
import time

_PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}
LEVELS = ("debug", "info", "warning", "error")


class _OneLine(logging.Formatter):
    def __init__(self, journald: bool) -> None:
        super().__init__()
        self.journald = journald

    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if record.exc_info and record.levelno >= logging.ERROR:
            exc = record.exc_info[1]
            msg = f"{msg}: {type(exc).__name__}: {exc}" if exc and str(exc) not in msg else msg
        msg = msg.replace("\n", " | ")
        if self.journald:
            return f"<{_PRIORITY.get(record.levelno, 6)}>{record.name}: {msg}"
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z {record.levelname:<7} {record.name}: {msg}"


def setup(level: str = "info", debug_tracebacks: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if debug_tracebacks:
        # --debug keeps full (multi-line) tracebacks for the developer at the terminal.
        formatter = logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    else:
        formatter = _OneLine(journald=bool(os.environ.get("JOURNAL_STREAM")))
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


class Throttled:
    """A failure that repeats (a full disk fails every commit, once a second) logged at most
    once per ``interval_s``, saying how many were held back since, and its end logged once."""

    def __init__(self, logger: logging.Logger, interval_s: float = 60.0,
                 clock=time.monotonic) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self.clock = clock
        self.failures = 0        # in a row, since the last success
        self.last: str | None = None   # the latest failure's message, until a success
        self._held = 0           # not logged since the last line
        self._logged_at: float | None = None

    def failure(self, msg: str, *args) -> None:
        self.failures += 1
        self.last = msg % args if args else msg
        now = self.clock()
        if self._logged_at is not None and now - self._logged_at < self.interval_s:
            self._held += 1
            return
        if self._held:
            msg += f" ({self._held} more times since the last report)"
        self.logger.error(msg, *args)
        self._logged_at, self._held = now, 0

    def success(self, msg: str, *args) -> None:
        """Logs msg (with ``after N failures`` appended) when failures came before."""
        if self.failures:
            self.logger.info(f"{msg} after {self.failures} failures", *args)
        self.failures, self._held, self._logged_at, self.last = 0, 0, None, None
