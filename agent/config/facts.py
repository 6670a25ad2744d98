"""The values hints may mention about a target, as the user configured them (never a password)."""

from __future__ import annotations

from agent.config.models import TargetConfig


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
