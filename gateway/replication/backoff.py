"""How long a stream waits before trying again: capped exponential backoff with full jitter,
and the upstream's own ``Retry-After`` (capped at :data:`MAX_RETRY_AFTER_S`)."""

from __future__ import annotations

import email.utils
import random
import time

#: An upstream may ask for a pause, but not for longer than this.
MAX_RETRY_AFTER_S = 600.0


class Backoff:
    """Delays of ``base * 2**n`` seconds capped at ``cap``, each drawn uniformly from
    [delay/2, delay] so that a fleet of gateways coming back together spreads out."""

    def __init__(self, base: float = 0.5, cap: float = 60.0, rng: random.Random | None = None):
        self.base, self.cap = base, cap
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        delay = min(self.cap, self.base * (2 ** min(self.failures, 30)))
        self.failures += 1
        return self._rng.uniform(delay / 2, delay)

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
