"""`ecs-health-agent lint FILE...`: read every file, check every task definition, print the findings.

Exit codes: 0 clean, 1 findings, 2 a file that cannot be read as a task definition (one line naming it, on stderr;
the other files are still checked)."""

from __future__ import annotations

import sys
from pathlib import Path

from agent.lint.documents import UnreadableInput, read_task_definitions
from agent.lint.findings import Finding, as_json, as_lines
from agent.lint.rules import lint_task
from agent.shared.redact import one_line

EXIT_CLEAN, EXIT_FINDINGS, EXIT_UNREADABLE = 0, 1, 2


def lint_files(paths: list[Path], *, json_output: bool = False) -> int:
    """Check every file; print the findings (lines or JSON) to stdout and unreadable files to stderr."""
    findings: list[Finding] = []
    read: list[str] = []
    unreadable: list[str] = []
    for path in paths:
        try:
            tasks = read_task_definitions(path)
        except UnreadableInput as exc:
            unreadable.append(str(exc))
            print(f"ecs-health-agent lint: {one_line(str(exc))}", file=sys.stderr)
            continue
        read.append(str(path))
        for task in tasks:
            findings.extend(lint_task(task))
    print(as_json(findings, read, unreadable) if json_output else as_lines(findings, len(read), len(unreadable)))
    if unreadable:
        return EXIT_UNREADABLE
    return EXIT_FINDINGS if findings else EXIT_CLEAN
