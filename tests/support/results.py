"""Probe results and configs for tests of the state and its readers: passing and failing runs, a policy-only config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.config.models import AgentConfig
from agent.probes.base import ProbeResult
from agent.runtime.state import AgentState, ProbeView
from agent.shared.reasons import Reason

PAIRS = [("credentials", "aws"), ("db", "writer")]


def make_config(**overrides: Any) -> AgentConfig:
    """An AgentConfig without targets unless given: the state only needs the policy fields."""
    return AgentConfig(**{"targets": (), **overrides})


def passed(
    probe: str = "db",
    target: str = "writer",
    duration_ms: float = 12.0,
    details: Mapping[str, str] | None = None,
) -> ProbeResult:
    """A passing result."""
    return ProbeResult(probe, target, True, None, "ok", "", "", duration_ms, details=details or {})


def failed(
    probe: str = "db", target: str = "writer", reason: Reason = Reason.AUTH, code: str = "db:auth"
) -> ProbeResult:
    """A failing result."""
    return ProbeResult(probe, target, False, reason, code, "login refused", "check the password", 30.0)


def view(state: AgentState, probe: str = "db", target: str = "writer") -> ProbeView:
    """One probe's entry in the current snapshot."""
    return next(v for v in state.snapshot().probes if (v.probe, v.target) == (probe, target))
