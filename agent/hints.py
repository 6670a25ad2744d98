"""Hints: the next step for a failure, written with the user's own host, port, user and region."""

from __future__ import annotations

from collections.abc import Mapping

from agent.config import TargetConfig


class _Facts(dict[str, str]):
    """Template values; a missing one renders as <name> instead of raising."""

    def __missing__(self, key: str) -> str:
        return f"<{key}>"


def target_facts(target: TargetConfig) -> dict[str, str]:
    """The values hints may mention about a target (never a password)."""
    return {
        "target": target.name,
        "engine": target.engine.value,
        "host": target.host,
        "port": str(target.port),
        "user": target.user or "<user>",
        "database": target.database or "<database>",
        "region": target.region or "<region>",
        "sslmode": target.sslmode.value,
        "secret_id": target.secret_id or "<secret-id>",
        "dsn": target.dsn,
        "password_source": _password_source(target),
    }


def _password_source(target: TargetConfig) -> str:
    """Where this target's password comes from, as the user configured it."""
    sources = []
    if target.password is not None:
        sources.append("AGENT_DB_PASSWORD")
    if target.secret_id:
        sources.append(f"secret {target.secret_id}")
    if target.iam_auth:
        sources.append("the IAM token")
    return " and ".join(sources) or "<password>"


def render(template: str, facts: Mapping[str, str]) -> str:
    """Fill a hint template; unknown fields stay visible as <field> rather than failing."""
    return template.format_map(_Facts(facts))


def pick(table: Mapping[str, str], code: str, reason: str) -> str:
    """The hint for a code: an exact code entry first, then the reason's generic entry, else ''."""
    return table.get(code) or table.get(reason) or ""
