"""What `lint` reports: one Finding per problem, naming the file, the container and the field; rendered as lines
or as JSON. Every message goes through the redactor; no check ever puts a value it flagged into a message."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum

from agent.shared.redact import one_line


class Code(StrEnum):
    """The kinds of finding (the `code` in --json output; docs/lint.md lists them)."""

    SECRET_LITERAL = "secret-literal"  # a password, token or secret as a literal in `environment`
    SECRET_IN_VALUE = "secret-in-value"  # a value with a password inside (a DSN's, key=value)
    AGENT_CONFIG = "agent-config"  # what `serve` would print before exiting 2
    HEALTH_CHECK = "health-check"  # the agent container's healthCheck
    DEPENDS_ON = "depends-on"  # a backend container does not wait for the agent HEALTHY
    STOP_TIMEOUT = "stop-timeout"  # SIGKILL would cut the agent's drain short
    TASK_ROLE = "task-role"  # AWS calls the agent makes, with no task role to make them
    SECRET_ARN = "secret-arn"  # a `secrets[].valueFrom` ECS cannot resolve
    SECRET_MISMATCH = "secret-mismatch"  # the injected password and the secret the agent re-reads differ
    DRIFT_BLIND = "drift-blind"  # the backend's password is injected, the agent's is not: drift goes unseen


@dataclass(frozen=True)
class Finding:
    """One problem: in `file`, the task definition's `container` (None: the task definition itself), at `field`
    (a path as the file spells it), of kind `code`, explained in `message` (never a flagged value)."""

    file: str
    container: str | None
    field: str
    code: Code
    message: str


def as_lines(findings: Iterable[Finding], files: int, unreadable: int = 0) -> str:
    """`FILE: FIELD (container NAME): MESSAGE [code]`, one per finding, then a count (of the files read, and of
    those that could not be: their errors went to stderr)."""
    lines = []
    count = 0
    for finding in findings:
        count += 1
        container = f" (container {finding.container})" if finding.container else ""
        lines.append(one_line(f"{finding.file}: {finding.field}{container}: {finding.message} [{finding.code}]"))
    noun = "file" if files == 1 else "files"
    summary = f"{count} finding{'' if count == 1 else 's'} in {files} {noun}" if count else f"{files} {noun}: clean"
    lines.append(summary + (f"; {unreadable} not read (named on stderr)" if unreadable else ""))
    return "\n".join(lines)


def as_json(findings: Iterable[Finding], files: list[str], unreadable: list[str]) -> str:
    """{"files": [read], "unreadable": [{file, error}], "findings": [{file, container, field, code, message}],
    "clean": bool}."""
    rows = [{**asdict(f), "code": str(f.code), "message": one_line(f.message)} for f in findings]
    errors = [one_line(e) for e in unreadable]
    clean = not rows and not errors
    return json.dumps({"files": files, "unreadable": errors, "findings": rows, "clean": clean}, indent=2)
