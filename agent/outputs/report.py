"""Rendering `check` results: a checklist for a person, or JSON for a script."""

from __future__ import annotations

import json
from collections.abc import Sequence

from agent.probes.base import ProbeResult

_WHAT = {
    "credentials": "AWS credentials resolve and STS accepts them",
    "secret": "Secrets Manager returns the database secret",
    "token": "an RDS IAM auth token can be generated",
    "db": "log in to the database and run SELECT 1",
    "app": "the backend answers",
}


def as_json(results: Sequence[ProbeResult]) -> str:
    """`{"ok": bool, "probes": [...]}`, one document."""
    return json.dumps({"ok": all(r.ok for r in results), "probes": [r.as_dict() for r in results]}, indent=2)


def as_checklist(results: Sequence[ProbeResult]) -> str:
    """One line per check (PASS/FAIL, what, reason), then the message and the next step for failures."""
    failed = sum(1 for r in results if not r.ok)
    head = f"all {len(results)} checks passed" if not failed else f"{failed} of {len(results)} checks failed"
    lines = [f"ecs-health-agent check: {head}", ""]
    for result in results:
        lines.extend(_lines(result))
    return "\n".join(lines)


def _lines(result: ProbeResult) -> list[str]:
    what = _WHAT.get(result.probe, result.probe)
    label = f"{result.probe} [{result.target}]"
    timing = f"{result.duration_ms:.0f} ms"
    if result.ok:
        facts = ", ".join(f"{k}={v}" for k, v in result.details.items())
        lines = [f"  PASS  {label:<22} {what} ({timing})"] + ([f"        {facts}"] if facts else [])
        return lines + ([f"        note: {result.message}"] if result.message else [])  # e.g. an unchecked password
    reason = result.reason.value if result.reason else "unknown"
    lines = [f"  FAIL  {label:<22} {what}: {reason} ({result.code}, {timing})"]
    if result.message:
        lines.append(f"        {result.message}")
    if result.hint:
        hint_lines = result.hint.splitlines()
        lines.append(f"        next: {hint_lines[0]}")
        lines.extend(f"              {line}" for line in hint_lines[1:])
    return lines
