"""LoopBridge: calls from other threads run on the loop; a loop that is busy past the timeout,
or that closes before it runs the call, is LoopUnavailable, not a thread stuck waiting."""

import asyncio
import threading

import pytest

from gateway.bridge import LoopBridge, LoopUnavailable


def calling_thread(bridge: LoopBridge) -> tuple[threading.Thread, list[str]]:
    """A started thread making one ``bridge.call``; the list gets the LoopUnavailable message."""
    outcome: list[str] = []

    def caller():
        try:
            bridge.call(int)
        except LoopUnavailable as e:
            outcome.append(str(e))

    t = threading.Thread(target=caller)
    t.start()
    return t, outcome


def test_calls_run_on_the_loop_thread():
    async def main():
        bridge = LoopBridge(asyncio.get_running_loop(), 10)
        loop_thread = threading.get_ident()

        async def where(x):
            return threading.get_ident(), x * 2

        def from_thread():
            return bridge.run(where, 21), bridge.call(threading.get_ident)

        (ran_on, doubled), called_on = await asyncio.to_thread(from_thread)
        assert ran_on == called_on == loop_thread and doubled == 42

    asyncio.run(main())


def test_a_busy_loop_times_out():
    async def main():
        bridge = LoopBridge(asyncio.get_running_loop(), 0.2)
        t, outcome = calling_thread(bridge)
        t.join()   # the loop is held here: the call cannot run before the caller gives up
        assert outcome == ["the gateway did not answer in time"]

    asyncio.run(main())


# The call scheduled on a loop that closed is never run: Python says so when it is collected.
@pytest.mark.filterwarnings("ignore:coroutine 'LoopBridge.call.<locals>.on_loop' was never awaited")
def test_a_loop_that_closes_fails_the_waiting_call_without_waiting_out_the_timeout():
    loop = asyncio.new_event_loop()
    bridge = LoopBridge(loop, 3600)   # the timeout would hold the thread for an hour
    t, outcome = calling_thread(bridge)
    loop.close()   # never ran: the call scheduled on it will not run
    t.join(timeout=60)
    # (whether the call was scheduled before the close or refused by the closed loop)
    assert not t.is_alive() and len(outcome) == 1 and outcome[0].startswith("the gateway is stopping")
    with pytest.raises(LoopUnavailable):
        bridge.call(int)
