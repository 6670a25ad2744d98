"""Everything the agent and the exporters talk to, on loopback: PostgreSQL, MariaDB, moto, ECS credentials.

PostgreSQL is a throwaway TLS cluster that really checks passwords (agent.sandbox.postgres). MariaDB is the
machine's own server (root from 127.0.0.1, as the tests use it); the bench only adds and drops its own users.
AWS is moto as a real HTTP server plus an ECS container-credentials endpoint, both in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import threading
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import aiomysql
import asyncpg
import pymysql

from agent.sandbox.aws import CredentialsEndpoint, Identities, MotoServer, assume_role, create_secret, seed_identities
from agent.sandbox.postgres import PostgresSandbox

T = TypeVar("T")
REGION = "us-east-1"
MYSQL_HOST, MYSQL_PORT = "127.0.0.1", 3306
# The scale phase keeps up to 50 connections open, the exporters and detection runs a few more.
_PG_SETTINGS = {"max_connections": "250"}


@dataclass(frozen=True, slots=True)
class Login:
    """A database user the bench created, and its password (random, test data only)."""

    user: str
    password: str

    def __repr__(self) -> str:
        return f"Login({self.user!r}, password=[REDACTED])"


def new_login(prefix: str) -> Login:
    """A fresh user name (safe unquoted in SQL) and password (URL-safe, so it fits in a DSN)."""
    return Login(f"{prefix}_{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(18))


class LoopThread:
    """An asyncio loop on its own thread, for the bench's async helpers (moto seeding, the credentials
    endpoint, admin SQL) while the bench itself stays synchronous and simple."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="bench-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run `coro` on the loop and wait (bounded) for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=timeout)

    def close(self) -> None:
        """Stop the loop and its thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


class World:
    """The databases and AWS stand-ins of one bench run; `close()` removes every trace."""

    def __init__(self) -> None:
        self.loop = LoopThread()
        self.pg = PostgresSandbox(ssl=True, settings=_PG_SETTINGS)
        self.moto = MotoServer()
        self.moto_url = ""
        self.identities: Identities | None = None
        self.credentials: CredentialsEndpoint | None = None
        self.mysql_available = False
        self._mysql_users: list[str] = []

    # -- start and stop -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start PostgreSQL and the AWS stand-ins; find out whether MariaDB answers."""
        self.pg.start()
        self.moto_url = self.moto.start()
        self.identities = self.loop.run(seed_identities(self.moto_url))
        keys = self.loop.run(assume_role(self.moto_url, self.identities.admin, self.identities.role_arn, "bench"))
        self.credentials = CredentialsEndpoint(keys, role_arn=self.identities.role_arn)
        self.loop.run(self.credentials.start())
        self.mysql_available = self.loop.run(self._mysql_answers())

    def close(self) -> None:
        """Drop the MariaDB users, stop every server, delete the cluster."""
        with contextlib.ExitStack() as stack:
            stack.callback(self.loop.close)
            stack.callback(self.pg.cleanup)
            stack.callback(self.moto.stop)
            if self.credentials is not None:
                stack.callback(self.loop.run, self.credentials.stop())
            if self._mysql_users:
                stack.callback(self.loop.run, self._drop_mysql_users())

    # -- PostgreSQL ---------------------------------------------------------------------------------------

    @property
    def pg_port(self) -> int:
        """Where the cluster listens (on 127.0.0.1)."""
        return self.pg.port

    def pg_role(self, prefix: str = "bench") -> Login:
        """A new login role with a password; it may read the monitoring views, like an exporter's role."""
        login = new_login(prefix)
        password = _pg_literal(login.password)
        self._pg_admin(f"CREATE ROLE {login.user} LOGIN PASSWORD {password} IN ROLE pg_monitor")
        return login

    def set_pg_password(self, user: str, password: str, kick: bool) -> None:
        """Change a role's password; with `kick`, end its sessions too (as a failover or restart would)."""
        statements = [f"ALTER ROLE {user} PASSWORD {_pg_literal(password)}"]
        if kick:
            # user names come from new_login(): letters, digits and underscores only
            kill = f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = {_pg_literal(user)}"  # noqa: S608
            statements.append(kill)
        self._pg_admin(*statements)

    def _pg_admin(self, *statements: str) -> None:
        async def execute() -> None:
            conn = await asyncpg.connect(host=self.pg.host, port=self.pg.port, user="postgres", database="postgres")
            try:
                for statement in statements:
                    await conn.execute(statement)
            finally:
                await conn.close()

        self.loop.run(execute())

    # -- MariaDB ------------------------------------------------------------------------------------------

    def mysql_user(self, prefix: str = "bench") -> Login:
        """A new MariaDB user with a password and what mysqld_exporter needs to read its metrics."""
        login = new_login(prefix)
        self._mysql_users.append(login.user)
        self.loop.run(
            self._mysql_admin(
                (f"CREATE USER '{login.user}'@'%%' IDENTIFIED BY %s", (login.password,)),
                # no arguments: pymysql leaves the SQL alone, so '%' is written plainly here
                (f"GRANT PROCESS, REPLICATION CLIENT, SELECT ON *.* TO '{login.user}'@'%'", ()),
            )
        )
        return login

    def set_mysql_password(self, user: str, password: str, kick: bool) -> None:
        """Change a user's password; with `kick`, end its sessions too."""
        self.loop.run(self._mysql_admin((f"ALTER USER '{user}'@'%%' IDENTIFIED BY %s", (password,))))
        if kick:
            self.loop.run(self._kill_mysql_sessions(user))

    async def _mysql_answers(self) -> bool:
        try:
            await self._mysql_admin()
        except pymysql.err.OperationalError:
            return False
        return True

    async def _mysql_admin(self, *statements: tuple[str, tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        conn = await aiomysql.connect(host=MYSQL_HOST, port=MYSQL_PORT, user="root", autocommit=True, connect_timeout=5)
        rows: list[tuple[Any, ...]] = []
        try:
            async with conn.cursor() as cursor:
                for sql, args in statements:
                    await cursor.execute(sql, args or None)
                    rows = list(await cursor.fetchall())
        finally:
            conn.close()
        return rows

    async def _kill_mysql_sessions(self, user: str) -> None:
        query = ("SELECT id FROM information_schema.processlist WHERE user = %s", (user,))
        for (thread_id,) in await self._mysql_admin(query):
            with contextlib.suppress(pymysql.err.OperationalError):  # it may have ended meanwhile
                await self._mysql_admin((f"KILL {int(thread_id)}", ()))

    async def _drop_mysql_users(self) -> None:
        for user in self._mysql_users:
            await self._kill_mysql_sessions(user)
            await self._mysql_admin((f"DROP USER IF EXISTS '{user}'@'%'", ()))
        self._mysql_users = []

    # -- AWS ----------------------------------------------------------------------------------------------

    def secret_for(self, login: Login) -> str:
        """A Secrets Manager secret in moto holding the login as RDS stores it; returns its ARN."""
        assert self.identities is not None
        value = json.dumps({"username": login.user, "password": login.password, "engine": "postgres"})
        name = f"bench/{login.user}"
        return self.loop.run(create_secret(self.moto_url, self.identities.admin, name, value, REGION))

    def aws_env(self) -> dict[str, str]:
        """The variables that send the agent's AWS calls to moto and its credentials to the ECS endpoint."""
        assert self.credentials is not None
        return {
            "AWS_ENDPOINT_URL": self.moto_url,
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": self.credentials.url,
            "AWS_REGION": REGION,
        }


def _pg_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
