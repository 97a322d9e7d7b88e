"""Waiting for the device under test to show something, instead of sleeping and then counting."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_for(probe: Callable[[], T], done: Callable[[T], bool], what: str,
             timeout: float = 60.0, every: float = 0.5) -> T:
    """Calls ``probe`` until ``done(value)``; returns that value, or fails naming ``what`` and the
    last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen within {timeout:.0f} s; last: {value!r}")
        time.sleep(every)
