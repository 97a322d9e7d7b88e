"""Log lines of repeating failures: at most one a minute, and the end of the trouble once."""

import logging

from gateway.logs import Throttled


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_failure_repeating_every_second_is_logged_once_a_minute(caplog):
    clock = Clock()
    throttled = Throttled(logging.getLogger("test.throttled"), 60.0, clock)
    with caplog.at_level(logging.INFO, logger="test.throttled"):
        for _ in range(150):        # two and a half minutes of a full disk, one commit a second
            throttled.failure("bucket %s: write failed: %s", "raw", "No space left on device")
            clock.now += 1.0
        throttled.success("bucket %s: writes are stored again", "raw")
        throttled.success("bucket %s: writes are stored again", "raw")   # nothing to report
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("ERROR", "bucket raw: write failed: No space left on device"),
        ("ERROR", "bucket raw: write failed: No space left on device "
                  "(59 more times since the last report)"),
        ("ERROR", "bucket raw: write failed: No space left on device "
                  "(59 more times since the last report)"),
        ("INFO", "bucket raw: writes are stored again after 150 failures"),
    ]
