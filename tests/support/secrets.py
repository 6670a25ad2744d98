"""Secret values the tests hand to the agent, and what the agents printed, so the session-finish scan
(tests/support/leak_scan.py) can prove none of them was ever printed."""

from __future__ import annotations

from collections.abc import Iterator

KNOWN: set[str] = set()
# The fault suite's distinctive values (tests/faults/hygiene.py): value -> what it is (password, secret key, ...).
DISTINCTIVE: dict[str, str] = {}
# Every fault-suite agent's output and HTTP bodies: (agent name, text), kept in memory for the session's scan.
CAPTURED: list[tuple[str, str]] = []
PREFIX_CHECKED = 4  # no output may contain even this many leading characters of a distinctive value


def remember(value: str) -> str:
    """Record a secret value (password, key, token) given to the agent; returns it unchanged."""
    KNOWN.add(value)
    return value


def distinctive_hits(text: str, values: dict[str, str] | None = None) -> Iterator[tuple[str, str]]:
    """(value, kind) of each distinctive value found in text, whole or by its first PREFIX_CHECKED characters."""
    for value, kind in (values if values is not None else DISTINCTIVE).items():
        if value[:PREFIX_CHECKED] in text:
            yield value, kind


def leaks(text: str, values: dict[str, str] | None = None) -> list[str]:
    """Which distinctive values show up in text, whole or by their first PREFIX_CHECKED characters."""
    return [
        f"{kind} (prefix {value[:PREFIX_CHECKED]!r}{', whole value' if value in text else ''})"
        for value, kind in distinctive_hits(text, values)
    ]
