"""Shared fixtures: real databases and AWS stand-ins live in tests/support/ as plugins."""

from __future__ import annotations

import shutil

import pytest

from agent.shared.redact import SECRETS
from tests.support.agent_process import OUTPUT_DIR

pytest_plugins = ["tests.support.databases", "tests.support.aws", "tests.support.slow", "tests.support.hermetic"]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Start each run with no agent output from an earlier one (the hygiene test scans what this run made)."""
    shutil.rmtree(OUTPUT_DIR, ignore_errors=True)


@pytest.fixture(autouse=True)
def isolated_secret_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets one test taught the process-wide registry must not mask another test's expected text."""
    monkeypatch.setattr(SECRETS, "_values", dict(SECRETS._values))
    monkeypatch.setattr(SECRETS, "_ordered", SECRETS._ordered)
