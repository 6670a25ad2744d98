"""The values hints may mention about a target, as the user configured them (never a password)."""

from __future__ import annotations

from agent.config.dsn import Engine
from agent.config.models import TargetConfig


def target_facts(target: TargetConfig) -> dict[str, str]:
    """The values hints may mention about a target (never a password)."""
    return {
        "target": target.name,
        "engine": target.engine.value,
        "host": f"[{target.host}]" if ":" in target.host else target.host,  # "{host}:{port}" reads [::1]:5432
        "port": str(target.port),
        "user": target.user or "<user>",
        "database": target.database or "<database>",
        "region": target.region or "<region>",
        "sslmode": target.sslmode.value,
        "secret_id": target.secret_id or "<secret-id>",
        "password_reference": target.password_reference or "<secret-id>",
        "dsn": target.dsn,
        "password_source": _password_source(target),
        "static_password": target.password_from or "AGENT_DB_PASSWORD",
        "database_in_dsn": _database_in_dsn(target),
    }


def _password_source(target: TargetConfig) -> str:
    """Where this target's password comes from, as the user configured it."""
    sources = []
    if target.password is not None:
        sources.append(target.password_from or "AGENT_DB_PASSWORD")
    if target.password_reference:
        sources.append(target.password_reference)
    if target.iam_auth:
        sources.append("the IAM token")
    return " and ".join(sources) or "<password>"


def _database_in_dsn(target: TargetConfig) -> str:
    """Where the database name was set, for a hint that asks to check it."""
    if target.database:
        return f"the name at the end of the DSN (.../{target.database})"
    if target.engine is Engine.POSTGRESQL:
        return (
            "the DSN, which names no database, so PostgreSQL used the user's name as the database's: put the"
            " database's name at its end (postgresql://user@host:5432/name)"
        )
    return "the DSN, which names no database: put the database's name at its end (mysql://user@host:3306/name)"
