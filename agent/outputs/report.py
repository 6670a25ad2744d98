"""Rendering `check` results: a checklist for a person, or JSON for a script."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from agent.probes.base import ProbeResult
from agent.probes.db_facts import DbFacts
from agent.shared.reasons import NOT_RUN_CODE

_WHAT = {
    "credentials": "AWS credentials resolve and STS accepts them",
    "secret": "Secrets Manager returns the database secret",
    "parameter": "Parameter Store returns the database password (GetParameter, decrypted)",
    "token": "an RDS IAM auth token can be generated",
    "db": "log in to the database and run SELECT 1",
    "app": "the backend answers",
}

_UNVERIFIED = (
    "        note: encrypted, but the server's certificate was not verified, so a server in the middle could have"
    " read the password (set AGENT_DB_SSLROOTCERT to its CA, for RDS global-bundle.pem, and sslmode=verify-full)"
)


def as_json(results: Sequence[ProbeResult]) -> str:
    """`{"ok": bool, "probes": [...]}`, one document."""
    probes = [r.as_dict() | _tls(r) | _database(r) for r in results]
    return json.dumps({"ok": all(r.ok for r in results), "probes": probes}, indent=2)


def _tls(result: ProbeResult) -> dict[str, object]:
    """An encrypted login's TLS version and whether the server was verified (as /status gives it)."""
    if not result.ok or "tls_verified" not in result.details:
        return {}
    return {"tls": {"version": result.details.get("tls"), "verified": result.details["tls_verified"]}}


def _database(result: ProbeResult) -> dict[str, object]:
    """What the database login read, and the warnings (as /status gives them)."""
    facts = DbFacts.from_details(result.details)
    if facts.empty:
        return {}
    return {"database": facts.as_dict() | {"warnings": facts.warnings(time.time())}}


def _warnings(result: ProbeResult) -> list[str]:
    return [f"        warning: {text}" for text in DbFacts.from_details(result.details).warnings(time.time())]


def as_checklist(results: Sequence[ProbeResult]) -> str:
    """One line per check (PASS/FAIL, what, reason), then the message and the next step for failures."""
    lines = [f"ecs-health-agent check: {summary(results)}", ""]
    for result in results:
        lines.extend(_lines(result))
    return "\n".join(lines)


def summary(results: Sequence[ProbeResult]) -> str:
    """`all 3 checks passed`, else the counts that are not zero: `1 failed, 2 not run` (a check skipped because one
    it depends on failed is not a failure of its own)."""
    not_run = sum(1 for r in results if not r.ok and r.code == NOT_RUN_CODE)
    failed = sum(1 for r in results if not r.ok) - not_run
    if not failed and not not_run:
        return f"all {len(results)} checks passed" if len(results) > 1 else "the 1 check passed"
    passed = len(results) - failed - not_run
    return ", ".join(f"{n} {what}" for n, what in ((failed, "failed"), (not_run, "not run"), (passed, "passed")) if n)


def _lines(result: ProbeResult) -> list[str]:
    what = _WHAT.get(result.probe, result.probe)
    label = f"{result.probe} [{result.target}]"
    timing = f"{result.duration_ms:.0f} ms"
    if result.ok:
        facts = ", ".join(f"{k}={v}" for k, v in result.details.items())
        lines = [f"  PASS  {label:<22} {what} ({timing})"] + ([f"        {facts}"] if facts else [])
        lines += [f"        note: {result.message}"] if result.message else []  # e.g. an unchecked password
        lines += _warnings(result)
        return lines + ([_UNVERIFIED] if result.details.get("tls_verified") == "no" else [])
    if result.code == NOT_RUN_CODE:
        return [f"  SKIP  {label:<22} {what}: {result.message}"]
    reason = result.reason.value if result.reason else "unknown"
    lines = [f"  FAIL  {label:<22} {what}: {reason} ({result.code}, {timing})"]
    if result.message:
        lines.append(f"        {result.message}")
    if result.hint:
        hint_lines = result.hint.splitlines()
        lines.append(f"        next: {hint_lines[0]}")
        lines.extend(f"              {line}" for line in hint_lines[1:])
    return lines + _warnings(result)
