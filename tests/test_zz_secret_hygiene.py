"""Runs last (file order): no secret value handed to any agent process in this run appears in its output."""

from __future__ import annotations

from tests.support.agent_process import OUTPUT_DIR
from tests.support.secrets import KNOWN

PREFIX = 8  # random secrets' shorter prefixes can occur by chance in kilobytes of base64-ish log text


def test_no_secret_or_secret_prefix_in_any_agent_output() -> None:
    outputs = sorted(OUTPUT_DIR.glob("*")) if OUTPUT_DIR.exists() else []
    leaks = [
        f"{path.name}: a secret handed to the agent appears (its first {PREFIX} characters)"
        for path in outputs
        for text in [path.read_text(errors="replace")]
        for secret in KNOWN
        if len(secret) >= PREFIX and secret[:PREFIX] in text
    ]
    assert not leaks, "\n".join(leaks)
