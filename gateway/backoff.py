"""Waiting before trying again: capped exponential backoff with jitter (reconnects, upstream
retries), and an upstream's own ``Retry-After`` (capped at :data:`MAX_RETRY_AFTER_S`)."""

from __future__ import annotations

import email.utils
import random
import time

#: An upstream may ask for a pause, but not for longer than this.
MAX_RETRY_AFTER_S = 600.0


def backoff_delay(attempt: int, first: float, cap: float, rng=random.random) -> float:
    """Capped exponential backoff with jitter: in [d/2, d] for d = min(cap, first * 2**attempt)."""
    d = min(cap, first * (2 ** min(attempt, 30)))
    return d * (0.5 + 0.5 * rng())


class Backoff:
    """Successive :func:`backoff_delay` values until :meth:`reset` (a success)."""

    def __init__(self, first: float = 0.5, cap: float = 60.0) -> None:
        self.first, self.cap = first, cap
        self.failures = 0

    def next_delay(self) -> float:
        delay = backoff_delay(self.failures, self.first, self.cap)
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta seconds or an HTTP date), capped
    at MAX_RETRY_AFTER_S; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return min(max(0.0, when.timestamp() - now), MAX_RETRY_AFTER_S)
