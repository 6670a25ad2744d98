"""Secret values the tests hand to the agent, so the hygiene test can prove none of them was ever printed."""

from __future__ import annotations

KNOWN: set[str] = set()


def remember(value: str) -> str:
    """Record a secret value (password, key, token) given to the agent; returns it unchanged."""
    KNOWN.add(value)
    return value
