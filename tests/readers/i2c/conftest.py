import pytest

from gateway.hardware.emulated import EmulatedI2CBus
from gateway.readers.i2c.driver import run_blocking


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def bus():
    return EmulatedI2CBus(1)


@pytest.fixture
def run(clock):
    """Runs driver steps, advancing the fake clock by each wait instead of sleeping."""
    return lambda steps: run_blocking(steps, sleep=clock.advance)
