"""What a task has done, kept in the data directory (``tasks/<name>.state`` and
``tasks/<name>.history``).

The state (JSON, replaced atomically after each run): the scheduled time of the last run
completed in order, the last success, and the dirty windows (scheduled times whose input late
data changed) still to recompute. The history (JSON lines, appended and synced per run; cut to
the newest ``limit`` entries when it reaches twice that): scheduled-for, started, finished,
status, error, points read and written, and why the run happened.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field


@dataclass
class RunRecord:
    scheduled_for: int    # ns
    started: int
    finished: int
    status: str           # "success" or "failed"
    reason: str           # "scheduled", "catch-up", "late data", "manual"
    points_read: int = 0
    points_written: int = 0
    error: str | None = None


@dataclass
class TaskState:
    last_scheduled: int | None = None   # runs up to here (scheduled time) are done, in order
    last_success: int | None = None
    dirty: list[int] = field(default_factory=list)


def _replace(path: str, data: bytes) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(os.path.dirname(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class TaskRecords:
    """The state and run history of one task."""

    def __init__(self, directory: str, name: str, limit: int) -> None:
        self.directory = directory   # made at the first save: reading never writes
        self.state_path = os.path.join(directory, f"{name}.state")
        self.history_path = os.path.join(directory, f"{name}.history")
        self.limit = limit
        self.state = self._load_state()

    def _load_state(self) -> TaskState:
        try:
            with open(self.state_path, "rb") as f:
                raw = json.loads(f.read())
            return TaskState(raw.get("last_scheduled"), raw.get("last_success"),
                             sorted(int(t) for t in raw.get("dirty", [])))
        except FileNotFoundError:
            return TaskState()
        except (ValueError, TypeError, AttributeError):
            return TaskState()   # damaged: runs again from the catch-up horizon

    def save_state(self) -> None:
        os.makedirs(self.directory, exist_ok=True)
        _replace(self.state_path, json.dumps(asdict(self.state)).encode())

    def append(self, record: RunRecord) -> None:
        line = json.dumps(asdict(record)) + "\n"
        os.makedirs(self.directory, exist_ok=True)
        with open(self.history_path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        runs = self._recorded()
        if len(runs) >= 2 * self.limit:
            _replace(self.history_path, "".join(
                json.dumps(asdict(r)) + "\n" for r in runs[-self.limit:]).encode())

    def runs(self) -> list[RunRecord]:
        """The newest ``limit`` runs, oldest first."""
        return self._recorded()[-self.limit:]

    def _recorded(self) -> list[RunRecord]:
        """Every run in the file (a torn last line from a crash is skipped)."""
        out = []
        try:
            with open(self.history_path, encoding="utf-8") as f:
                for line in f:
                    try:
                        out.append(RunRecord(**json.loads(line)))
                    except (ValueError, TypeError):
                        continue
        except FileNotFoundError:
            pass
        return out
