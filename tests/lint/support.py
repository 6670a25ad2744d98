"""Task definitions for the lint tests: ecs/task-definition.json (clean) with one thing changed, written to a file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.cli import main
from agent.lint.findings import Code

REPO = Path(__file__).resolve().parents[2]
ECS = REPO / "ecs"
BACKEND, AGENT = 0, 1  # containerDefinitions indexes in ecs/task-definition.json


def example() -> dict[str, Any]:
    """ecs/task-definition.json, freshly read (tests change it)."""
    task: dict[str, Any] = json.loads((ECS / "task-definition.json").read_text())
    return task


def env_entry(task: dict[str, Any], index: int, name: str) -> dict[str, Any]:
    entries: list[dict[str, Any]] = task["containerDefinitions"][index]["environment"]
    (entry,) = [e for e in entries if e["name"] == name]
    return entry


def write(tmp_path: Path, task: Any, name: str = "task.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(task) if name.endswith(".json") else str(task))
    return path


def lint_json(capsys: pytest.CaptureFixture[str], *paths: Path) -> tuple[int, dict[str, Any]]:
    """`ecs-health-agent lint --json PATH...` in this process: the exit code and the parsed report."""
    code = main(["lint", "--json", *map(str, paths)])
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return code, report


def only_finding(capsys: pytest.CaptureFixture[str], path: Path) -> dict[str, Any]:
    """The one finding `lint` reports for a file (exit 1), asserting there is exactly one."""
    code, report = lint_json(capsys, path)
    assert code == 1, report
    (finding,) = report["findings"]
    assert finding["code"] in {c.value for c in Code}
    return dict(finding)
