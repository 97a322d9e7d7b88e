"""The Markdown report of a HIL run: one row per scenario with its outcome and its figures."""

from __future__ import annotations

import datetime
import pathlib
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ScenarioResult:
    name: str
    outcome: str = "not run"          # passed, failed, not possible on this rig
    seconds: float = 0.0
    figures: dict[str, Any] = field(default_factory=dict)
    evidence: str = ""                # the failure, and the gateway's log tail


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def write_markdown(path: pathlib.Path, rig: str, results: list[ScenarioResult]) -> None:
    """Writes the report; evidence of failures follows the table, one section each."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# HIL report: {rig} rig, {now}", "",
             "| scenario | outcome | time (s) | figures |", "|---|---|---|---|"]
    for r in results:
        figures = "; ".join(f"{k} {_cell(v)}" for k, v in r.figures.items()) or "-"
        lines.append(f"| {r.name} | {r.outcome} | {r.seconds:.1f} | {figures} |")
    for r in results:
        if r.evidence:
            lines += ["", f"## {r.name}: {r.outcome}", "", "```", r.evidence.rstrip(), "```"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
