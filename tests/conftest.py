"""Shared fixtures: real databases and AWS stand-ins live in tests/support/ as plugins."""

from __future__ import annotations

import pytest

from agent.shared.redact import SECRETS

# tests.support.leak_scan: every run ends with a scan of its agents' output for secrets (a leak fails the run).
pytest_plugins = ["tests.support.databases", "tests.support.aws", "tests.support.slow", "tests.support.leak_scan"]


@pytest.fixture(autouse=True)
def isolated_secret_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets one test taught the process-wide registry must not mask another test's expected text."""
    monkeypatch.setattr(SECRETS, "_values", dict(SECRETS._values))
    monkeypatch.setattr(SECRETS, "_ordered", SECRETS._ordered)
