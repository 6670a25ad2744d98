"""Real databases as pytest fixtures: a throwaway PostgreSQL cluster (or EHA_TEST_PG_ADMIN_DSN), the system
MariaDB (or EHA_TEST_MYSQL_ADMIN_DSN), per-test roles and databases with random names, and odd loopback ports.

A database that cannot be had is a failure with the reason, never a skip: a green run must mean it ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomysql
import asyncpg
import pymysql
import pytest
from pydantic import SecretStr

from agent.config.dsn import Engine, SslMode, parse_dsn
from agent.config.models import TargetConfig
from agent.probes.base import ProbeResult
from agent.sandbox.postgres import HBA_REJECTED_ROLE, PostgresSandbox, SandboxError, TlsFiles
from tests.support.ports import SilentListener, refused_port
from tests.support.secrets import remember

PG_ADMIN_ENV = "EHA_TEST_PG_ADMIN_DSN"
MYSQL_ADMIN_ENV = "EHA_TEST_MYSQL_ADMIN_DSN"
MARIADBD = "/usr/sbin/mariadbd"
SETTLE_SECONDS = 3.0  # how long a server may take to notice a closed session


@dataclass(frozen=True, slots=True)
class Server:
    """Where a database server listens and how the tests' admin logs in to it."""

    engine: Engine
    host: str
    port: int
    admin_user: str
    admin_password: str
    admin_database: str | None
    ca_cert: Path | None = None  # the CA that signed the server's certificate (TLS servers only)


def random_name(prefix: str = "eha") -> str:
    """A fresh identifier, safe unquoted in SQL."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def random_password() -> str:
    """A fresh password (long enough for the redaction registry), remembered for the session-finish secret scan."""
    return remember(secrets.token_urlsafe(18))


def target_for(server: Server, user: str | None, **overrides: Any) -> TargetConfig:
    """A TargetConfig for a test server with a unique name (COUNTERS are per target name)."""
    scheme = "postgresql" if server.engine is Engine.POSTGRESQL else "mysql"
    fields: dict[str, Any] = {
        "name": random_name("t"),
        "engine": server.engine,
        "host": server.host,
        "port": server.port,
        "database": server.admin_database,
        "user": user,
        "sslmode": SslMode.DISABLE,
        "dsn": f"{scheme}://{user}@{server.host}:{server.port}/",
    }
    fields.update(overrides)
    return TargetConfig.model_validate(fields)


def assert_no_secret(result: ProbeResult, *values: str | SecretStr | None) -> None:
    """No secret value appears in any field of a ProbeResult (message, hint, details, repr, JSON)."""
    shown = " ".join([repr(result), json.dumps(result.as_dict()), json.dumps(dict(result.details)), result.hint])
    for value in values:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if text:
            assert text not in shown, f"a password leaked into the {result.probe} result"


# -- loopback ports ------------------------------------------------------------------------------------------


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed): connections are refused."""
    return refused_port()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port whose kernel completes the TCP handshake and where nothing ever answers."""
    listener = SilentListener()
    try:
        yield listener.port
    finally:
        listener.close()


@pytest.fixture
def blackhole_port() -> Iterator[int]:
    """A loopback port that drops SYNs, as a security group does: its accept queue is full, so the kernel
    ignores new handshakes and a connect() waits until it times out."""
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(socket.socket())
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port: int = server.getsockname()[1]
        for _ in range(4):  # enough to fill a backlog of 0 (+1) whatever the kernel rounds it to
            filler = stack.enter_context(socket.socket())
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
        yield port


# -- PostgreSQL ----------------------------------------------------------------------------------------------


def _sandbox(ssl: bool, tls_files: TlsFiles | None = None) -> Iterator[PostgresSandbox]:
    try:
        cluster = PostgresSandbox(ssl=ssl, tls_files=tls_files)
    except SandboxError as exc:
        pytest.fail(f"cannot build a throwaway PostgreSQL cluster: {exc}", pytrace=False)
    try:
        try:
            cluster.start()
        except SandboxError as exc:
            pytest.fail(f"cannot start a throwaway PostgreSQL cluster: {exc}", pytrace=False)
        yield cluster
    finally:
        cluster.cleanup()


def _cluster_server(cluster: PostgresSandbox) -> Server:
    ca = cluster.ca_cert if cluster.ssl else None
    return Server(Engine.POSTGRESQL, cluster.host, cluster.port, cluster.admin_user, "", "postgres", ca)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresSandbox]:
    """A throwaway cluster without TLS; passwords are checked; members of HBA_REJECTED_ROLE are rejected."""
    yield from _sandbox(ssl=False)


@pytest.fixture(scope="session")
def pg_tls_cluster() -> Iterator[PostgresSandbox]:
    """A throwaway cluster with ssl=on and a certificate for localhost/127.0.0.1 signed by `ca_cert`."""
    yield from _sandbox(ssl=True)


def pg_tls_cluster_serving(tls_files: TlsFiles) -> Iterator[PostgresSandbox]:
    """A throwaway cluster with ssl=on serving the given chain (e.g. tests/support/certificates.py `make_chain`, with
    the validity a test needs), for a fixture of the test's own."""
    yield from _sandbox(ssl=True, tls_files=tls_files)


def cluster_server(cluster: PostgresSandbox) -> Server:
    """The Server a throwaway cluster is, for target_for and the admins."""
    return _cluster_server(cluster)


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> Server:
    """A PostgreSQL server that enforces passwords: EHA_TEST_PG_ADMIN_DSN if set, else the throwaway cluster."""
    dsn = os.environ.get(PG_ADMIN_ENV)
    if not dsn:
        return _cluster_server(request.getfixturevalue("pg_cluster"))
    parsed = parse_dsn(dsn)
    password = parsed.password.get_secret_value() if parsed.password else ""
    return Server(Engine.POSTGRESQL, parsed.host, parsed.port, parsed.user or "postgres", password, parsed.database)


class PgAdmin:
    """Creates roles and databases with random names on one server, and drops them after the test."""

    def __init__(self, server: Server, conn: Any) -> None:
        self.server = server
        self.conn = conn
        self.roles: list[str] = []
        self.databases: list[str] = []

    async def role(self, password: str | None = None, *, limit: int | None = None, rejected: bool = False) -> str:
        """A new login role; with `rejected`, pg_hba.conf of the throwaway cluster turns it away."""
        name = random_name()
        sql = f"CREATE ROLE {name} LOGIN"
        sql += f" PASSWORD {_pg_literal(password)}" if password is not None else ""
        sql += f" CONNECTION LIMIT {limit}" if limit is not None else ""
        await self.conn.execute(sql + (f" IN ROLE {HBA_REJECTED_ROLE}" if rejected else ""))
        self.roles.append(name)
        return name

    async def set_password(self, role: str, password: str) -> None:
        """Change a role's password (a rotation)."""
        await self.conn.execute(f"ALTER ROLE {role} PASSWORD {_pg_literal(password)}")

    async def database(self) -> str:
        """A new, empty database."""
        name = random_name()
        await self.conn.execute(f"CREATE DATABASE {name}")
        self.databases.append(name)
        return name

    async def pids(self, role: str) -> list[int]:
        """Server process ids of the role's sessions."""
        rows = await self.conn.fetch("SELECT pid FROM pg_stat_activity WHERE usename = $1 ORDER BY pid", role)
        return [row["pid"] for row in rows]

    async def settle(self, role: str, expected: int) -> list[int]:
        """The role's session pids once their count is `expected` (a closed session ends asynchronously)."""
        loop = asyncio.get_running_loop()
        until = loop.time() + SETTLE_SECONDS
        while len(pids := await self.pids(role)) != expected and loop.time() < until:
            await asyncio.sleep(0.02)
        return pids

    async def terminate(self, pid: int) -> None:
        """Kill one session, as an operator or a failover would."""
        await self.conn.execute("SELECT pg_terminate_backend($1)", pid)

    async def cleanup(self) -> None:
        """Drop everything this test created (ending its sessions first)."""
        for name in self.roles:
            await self.conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", name)
        for name in self.databases:
            await self.conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
        for name in self.roles:
            await self.conn.execute(f"DROP ROLE {name}")


def _pg_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


async def _pg_admin(server: Server, hba_group: bool = False) -> AsyncIterator[PgAdmin]:
    conn = await asyncpg.connect(
        host=server.host,
        port=server.port,
        user=server.admin_user,
        password=server.admin_password or None,
        database=server.admin_database or "postgres",
        ssl="prefer",
    )
    admin = PgAdmin(server, conn)
    try:
        # The throwaway cluster's pg_hba.conf rejects members of this group; create it there only.
        if hba_group and not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", HBA_REJECTED_ROLE):
            await conn.execute(f"CREATE ROLE {HBA_REJECTED_ROLE} NOLOGIN")
        yield admin
    finally:
        try:
            await admin.cleanup()
        finally:
            await conn.close()


@pytest.fixture
async def pg_admin(pg_server: Server) -> AsyncIterator[PgAdmin]:
    """Admin access to `pg_server`, dropping this test's roles and databases afterwards."""
    async for admin in _pg_admin(pg_server):
        yield admin


@pytest.fixture
async def pg_cluster_admin(pg_cluster: PostgresSandbox) -> AsyncIterator[PgAdmin]:
    """Admin access to the throwaway cluster itself (for pg_hba.conf and restart cases)."""
    async for admin in _pg_admin(_cluster_server(pg_cluster), hba_group=True):
        yield admin


@pytest.fixture
async def pg_tls_admin(pg_tls_cluster: PostgresSandbox) -> AsyncIterator[PgAdmin]:
    """Admin access to the TLS cluster."""
    async for admin in _pg_admin(_cluster_server(pg_tls_cluster)):
        yield admin


# -- MariaDB / MySQL -----------------------------------------------------------------------------------------


async def _mysql_connect(server: Server, **kwargs: Any) -> Any:
    return await aiomysql.connect(
        host=server.host,
        port=server.port,
        user=server.admin_user,
        password=server.admin_password,
        autocommit=True,
        connect_timeout=5,
        **kwargs,
    )


async def _reachable(server: Server) -> str | None:
    """None if the admin can log in, else why not."""
    try:
        conn = await _mysql_connect(server)
    except pymysql.err.OperationalError as exc:
        return f"{exc.args[1] if len(exc.args) > 1 else exc} ({exc.__cause__ or 'no cause'})"
    await conn.ensure_closed()
    return None


async def _start_mariadb(server: Server) -> str | None:
    """Start the installed but stopped system MariaDB; None once it answers, else why not."""
    if not shutil.which("start-stop-daemon") or not Path(MARIADBD).exists():
        return "MariaDB is not installed here (no /usr/sbin/mariadbd)"
    command = ["start-stop-daemon", "--start", "--oknodo", "--background", "--exec", MARIADBD]
    subprocess.run(command, check=False, capture_output=True, timeout=30)
    why: str | None = "did not start"
    for _ in range(150):
        await asyncio.sleep(0.2)
        if (why := await _reachable(server)) is None:
            return None
    return f"started {MARIADBD}, but it never answered: {why}"


@pytest.fixture(scope="session")
async def mysql_server() -> Server:
    """The system MariaDB at 127.0.0.1:3306 as root (or EHA_TEST_MYSQL_ADMIN_DSN), started if it is stopped."""
    dsn = os.environ.get(MYSQL_ADMIN_ENV)
    if dsn:
        parsed = parse_dsn(dsn)
        password = parsed.password.get_secret_value() if parsed.password else ""
        server = Server(Engine.MYSQL, parsed.host, parsed.port, parsed.user or "root", password, parsed.database)
    else:
        server = Server(Engine.MYSQL, "127.0.0.1", 3306, "root", "", None)
    why = await _reachable(server)
    if why is not None and not dsn:
        why = await _start_mariadb(server)
    if why is not None:
        pytest.fail(f"no MySQL/MariaDB server for the tests ({server.host}:{server.port}): {why}", pytrace=False)
    return server


class MySqlAdmin:
    """Creates users and databases with random names, and drops them after the test."""

    def __init__(self, server: Server, conn: Any) -> None:
        self.server = server
        self.conn = conn
        self.users: list[str] = []

    async def execute(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Run one statement as the admin; return its rows."""
        async with self.conn.cursor() as cursor:
            await cursor.execute(sql, args or None)
            return list(await cursor.fetchall())

    async def user(self, password: str, *, max_connections: int | None = None, grant_prefix: bool = False) -> str:
        """A new user@'%'; with `grant_prefix`, it may use every database named like its own name + '_*'."""
        name = random_name()
        limit = f" WITH MAX_USER_CONNECTIONS {max_connections}" if max_connections else ""
        await self.execute(f"CREATE USER '{name}'@'%%' IDENTIFIED BY %s{limit}", password)
        self.users.append(name)
        if grant_prefix:  # lets MariaDB answer 1049 "unknown database" instead of 1044 "access denied"
            await self.execute(f"GRANT ALL ON `{name}\\_%`.* TO '{name}'@'%'")
        return name

    async def set_password(self, user: str, password: str) -> None:
        """Change a user's password (a rotation)."""
        await self.execute(f"ALTER USER '{user}'@'%%' IDENTIFIED BY %s", password)

    async def thread_ids(self, user: str) -> list[int]:
        """Connection ids of the user's sessions."""
        rows = await self.execute("SELECT id FROM information_schema.processlist WHERE user = %s ORDER BY id", user)
        return [int(row[0]) for row in rows]

    async def settle(self, user: str, expected: int) -> list[int]:
        """The user's connection ids once their count is `expected` (a closed session ends asynchronously)."""
        loop = asyncio.get_running_loop()
        until = loop.time() + SETTLE_SECONDS
        while len(ids := await self.thread_ids(user)) != expected and loop.time() < until:
            await asyncio.sleep(0.02)
        return ids

    async def kill(self, thread_id: int) -> None:
        """Kill one session, as an operator or a failover would."""
        await self.execute(f"KILL {int(thread_id)}")

    async def cleanup(self) -> None:
        """Drop the users this test created (killing their sessions first)."""
        for name in self.users:
            for thread_id in await self.thread_ids(name):
                with contextlib.suppress(pymysql.err.OperationalError):  # it may have ended meanwhile
                    await self.kill(thread_id)
            await self.execute(f"DROP USER '{name}'@'%'")


@pytest.fixture
async def mysql_admin(mysql_server: Server) -> AsyncIterator[MySqlAdmin]:
    """Admin access to `mysql_server`, dropping this test's users afterwards."""
    conn = await _mysql_connect(mysql_server)
    admin = MySqlAdmin(mysql_server, conn)
    try:
        yield admin
    finally:
        try:
            await admin.cleanup()
        finally:
            await conn.ensure_closed()
