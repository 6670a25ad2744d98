"""Shared fixtures: real databases and AWS stand-ins live in tests/support/ as plugins."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agent.shared.redact import SECRETS
from tests.support.blocking import RecordedBlockingError, no_blocking_calls

# tests.support.leak_scan: every run ends with a scan of its agents' output for secrets (a leak fails the run).
# tests.support.hermetic: the tests' own resolver; the run fails on any lookup or connection off the machine.
pytest_plugins = [
    "tests.support.databases",
    "tests.support.pg_methods",
    "tests.support.standby",
    "tests.support.aws",
    "tests.support.skewed_sts",
    "tests.support.slow",
    "tests.support.leak_scan",
    "tests.support.hermetic",
]


@pytest.fixture(autouse=True)
def isolated_secret_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets one test taught the process-wide registry must not mask another test's expected text."""
    monkeypatch.setattr(SECRETS, "_values", dict(SECRETS._values))
    monkeypatch.setattr(SECRETS, "_ordered", SECRETS._ordered)


@pytest.fixture(autouse=True)
def blocking_calls() -> Iterator[list[RecordedBlockingError]]:
    """Fail the test if anything blocks a running event loop (allowances: tests/support/blocking.py).

    Active for every test: blockbuster only acts while a loop runs in the calling thread, which covers async
    tests and their fixtures, and sync tests that run the agent's loop in-process.
    """
    with no_blocking_calls() as seen:
        yield seen
    if seen:
        calls = "\n".join(f"{error}, at:\n{error.where}" for error in seen)
        pytest.fail(f"{len(seen)} blocking call(s) on the event loop:\n{calls}", pytrace=False)
