"""Runs the built-in task's catch-up in a process of its own (the SIGKILL test kills it):
python task_runner.py DATA_DIR TASK_DIR NOW_NS"""

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from gateway.store import Store  # noqa: E402
from gateway.tasks.default import SOURCE  # noqa: E402
from gateway.tasks.scheduler import TaskScheduler  # noqa: E402
from gateway.tasks.spec import task_spec  # noqa: E402
from tasks_support import FakeClock, settings, store_config  # noqa: E402


async def main(data_dir: str, task_dir: str, now: int) -> None:
    async with Store(data_dir, store_config()) as store:
        sched = TaskScheduler(store, [task_spec(SOURCE)], task_dir, settings(), clock=FakeClock(now))
        await sched.run_due()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
