"""Hint templates: the next step for a failure, filled with the user's own values (see agent.config.facts)."""

from __future__ import annotations

from collections.abc import Mapping
from string import Formatter

from agent.shared.redact import redact


class _Facts(dict[str, str]):
    """Template values; a missing one renders as <name> instead of raising."""

    def __missing__(self, key: str) -> str:
        return f"<{key}>"


def render(template: str, facts: Mapping[str, str]) -> str:
    """Fill a hint template with redacted facts; unknown fields stay visible as <field> rather than failing.

    Only the values are redacted: the template is the agent's own text, which no secret pattern must touch.
    """
    return template.format_map(_Facts({key: redact(value) for key, value in facts.items()}))


def missing_fields(template: str, facts: Mapping[str, str]) -> set[str]:
    """The fields of a template that facts do not fill (rendered, each would show as <field>)."""
    return {field for _, field, _, _ in Formatter().parse(template) if field and field not in facts}


def pick(table: Mapping[str, str], code: str, reason: str) -> str:
    """The hint for a code: an exact code entry first, then the reason's generic entry, else ''."""
    return table.get(code) or table.get(reason) or ""
