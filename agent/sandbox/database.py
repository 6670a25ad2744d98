"""The sandbox's PostgreSQL: a server that really checks passwords, with a role and a database of the demo's own.

An existing server is used only if it enforces passwords for a new role from 127.0.0.1. A server with `trust`
authentication (common on developer machines) accepts any password, so "break the password" would break
nothing there: the sandbox detects that and starts a throwaway cluster instead (agent.sandbox.postgres).
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from agent.config.dsn import DsnError, parse_dsn
from agent.sandbox.postgres import PostgresSandbox, SandboxError
from agent.shared.reasons import describe

DEFAULT_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
CONNECT_TIMEOUT_SECONDS = 5.0
# What asyncpg raises when a server cannot be had: refused/DNS (OSError), no answer, server-side refusals.
_CONNECT_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class DatabaseUnavailable(RuntimeError):
    """No PostgreSQL that enforces passwords could be had; the message says what to install or start."""


def new_password() -> str:
    """A random password of URL-safe characters (safe inside a quoted SQL literal)."""
    return secrets.token_urlsafe(18)


def shown(dsn: str) -> str:
    """A DSN as the sandbox may print it: without its password."""
    try:
        return parse_dsn(dsn).render()
    except DsnError:
        return "<an unparsable DSN>"


@dataclass
class SandboxDatabase:
    """The chosen server, the demo's role and database on it, and the throwaway cluster if one was started."""

    admin_dsn: str
    host: str
    port: int
    role: str
    database: str
    cluster: PostgresSandbox | None = None
    running: bool = True

    @property
    def kind(self) -> str:
        """`throwaway` (a cluster the sandbox started) or `existing`."""
        return "throwaway" if self.cluster is not None else "existing"

    @property
    def dsn(self) -> str:
        """The DSN the agent gets: no password (it comes from the secret)."""
        return f"postgresql://{self.role}@{self.host}:{self.port}/{self.database}"

    async def create(self, password: str) -> None:
        """Create the login role with `password` and a database it owns."""
        async with _admin(self.admin_dsn) as conn:
            await conn.execute(f"CREATE ROLE {self.role} LOGIN PASSWORD {_literal(password)}")
            await conn.execute(f"CREATE DATABASE {self.database} OWNER {self.role}")

    async def set_password(self, password: str) -> None:
        """Change the role's password (existing sessions stay logged in, as on a real server)."""
        async with _admin(self.admin_dsn) as conn:
            await conn.execute(f"ALTER ROLE {self.role} PASSWORD {_literal(password)}")

    async def stop_server(self) -> None:
        """Stop the throwaway cluster (an outage: connections are refused)."""
        if self.cluster is None:
            raise DatabaseUnavailable("the sandbox did not start this server, so it will not stop it")
        await finish_in_thread(self.cluster.stop)
        self.running = False

    async def start_server(self) -> None:
        """Start the throwaway cluster again on the same port."""
        if self.cluster is not None and not self.running:
            await finish_in_thread(self.cluster.start)
            self.running = True

    async def drop(self) -> None:
        """Remove every trace: the whole cluster, or the database and role on an existing server."""
        if self.cluster is not None:
            await finish_in_thread(self.cluster.cleanup)
            return
        async with _admin(self.admin_dsn) as conn:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 OR datname = $2",
                self.role,
                self.database,
            )
            await conn.execute(f"DROP DATABASE IF EXISTS {self.database}")
            await conn.execute(f"DROP ROLE IF EXISTS {self.role}")


async def open_database(admin_dsn: str | None, say: Callable[[str], None]) -> SandboxDatabase:
    """The existing server at admin_dsn if it enforces passwords, else a throwaway cluster (or raise)."""
    admin_dsn = admin_dsn or DEFAULT_ADMIN_DSN
    names = _names()
    problem = await enforcement_problem(admin_dsn)
    if problem is None:
        dsn = parse_dsn(admin_dsn)
        say(f"PostgreSQL: using the server at {shown(admin_dsn)} (it checks passwords)")
        return SandboxDatabase(admin_dsn, dsn.host, dsn.port, *names)
    say(f"PostgreSQL: not using {shown(admin_dsn)}: {problem}")
    try:
        cluster = await asyncio.to_thread(PostgresSandbox)  # runs pg_config and makes a directory
    except SandboxError as exc:
        raise DatabaseUnavailable(f"{exc}; or give --postgres with a server that checks passwords") from None
    say(f"PostgreSQL: starting a throwaway cluster from {cluster.bindir} in {cluster.root}")
    try:
        await finish_in_thread(cluster.start)
    except SandboxError as exc:
        await finish_in_thread(cluster.cleanup)
        raise DatabaseUnavailable(f"the throwaway cluster did not start: {exc}") from None
    except BaseException:  # cancelled (Ctrl-C) while starting: leave nothing behind, then go on cancelling
        await finish_in_thread(cluster.cleanup)
        raise
    return SandboxDatabase(cluster.admin_dsn(), cluster.host, cluster.port, *names, cluster=cluster)


async def enforcement_problem(admin_dsn: str) -> str | None:
    """Why the server at admin_dsn cannot host the demo (unreachable, no rights, trust auth), or None."""
    try:
        target = parse_dsn(admin_dsn)
    except DsnError as exc:
        return f"not a usable DSN ({exc})"
    role = _names()[0]
    try:
        async with _admin(admin_dsn) as conn:
            await conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD {_literal(new_password())}")
            try:
                return await _wrong_password_problem(target.host, target.port, role)
            finally:
                await conn.execute(f"DROP ROLE IF EXISTS {role}")
    except _CONNECT_ERRORS as exc:
        return f"cannot log in there as the admin and create a role ({describe(exc)})"


async def _wrong_password_problem(host: str, port: int, role: str) -> str | None:
    try:
        conn = await asyncpg.connect(
            host=host, port=port, user=role, password="not-" + new_password(), database="postgres",
            timeout=CONNECT_TIMEOUT_SECONDS, ssl="prefer",
        )  # fmt: skip
    except asyncpg.InvalidPasswordError:
        return None  # the wrong password was refused: this server checks passwords
    except _CONNECT_ERRORS as exc:
        return f"a login with a wrong password failed for another reason ({describe(exc)})"
    await conn.close()
    return (
        f"it accepted a WRONG password for a new role from {host} (trust authentication in pg_hba.conf), so a"
        " broken password would not fail there"
    )


class _admin:
    """`async with _admin(dsn) as conn`: an admin connection, closed on exit (connect has a timeout)."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: Any = None

    async def __aenter__(self) -> Any:
        self._conn = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT_SECONDS, ssl="prefer")
        return self._conn

    async def __aexit__(self, *exc_info: object) -> None:
        await self._conn.close(timeout=CONNECT_TIMEOUT_SECONDS)


async def finish_in_thread(func: Callable[[], None]) -> None:
    """Run blocking func in a thread and wait for it even when cancelled, so cleanup sees what it made."""
    task = asyncio.ensure_future(asyncio.to_thread(func))
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


def _names() -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return f"eha_sandbox_{suffix}", f"eha_sandbox_{suffix}"


def _literal(value: str) -> str:
    """A SQL string literal (DDL takes no bind parameters); our passwords are URL-safe anyway."""
    return "'" + value.replace("'", "''") + "'"
