"""Admin handles on the fault suite's servers: its own PostgreSQL cluster, the shared MariaDB, a hosts file.

The PostgreSQL cluster belongs to this suite (it may be stopped, restarted, reconfigured and filled up). The
MariaDB server is shared with every other test and person on the machine: only this suite's own users are
touched (their passwords, their connection limits, their sessions), never a global setting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

import aiomysql
import asyncpg
import pymysql

from agent.sandbox.postgres import PostgresSandbox
from tests.support.databases import Server


def name(prefix: str = "eha_f") -> str:
    """A fresh identifier, safe unquoted in SQL."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class PgControl:
    """The superuser of the suite's own cluster; reconnects after the cluster was stopped and started."""

    def __init__(self, cluster: PostgresSandbox) -> None:
        self.cluster = cluster
        self._conn: Any = None
        self._lock = asyncio.Lock()  # one connection, used by a test and its session watcher at once
        self.fillers: list[Any] = []

    async def conn(self) -> Any:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(
                host=self.cluster.host, port=self.cluster.port, user=self.cluster.admin_user, database="postgres"
            )
        return self._conn

    async def execute(self, sql: str, *args: Any) -> None:
        await self.fetch(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        async with self._lock:
            try:
                return list(await (await self.conn()).fetch(sql, *args))
            except (asyncpg.InterfaceError, asyncpg.PostgresConnectionError, asyncpg.AdminShutdownError, OSError):
                self._drop()  # the server restarted under us: once more, on a new connection
                return list(await (await self.conn()).fetch(sql, *args))

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None

    async def pids(self, role: str) -> list[int]:
        """Server process ids of the role's sessions."""
        rows = await self.fetch("SELECT pid FROM pg_stat_activity WHERE usename = $1 ORDER BY pid", role)
        return [row["pid"] for row in rows]

    async def role(self, password: str, role: str | None = None) -> str:
        role = role or name()
        await self.execute(f"CREATE ROLE {role} LOGIN PASSWORD {literal(password)}")
        return role

    async def database(self, owner: str | None = None, db: str | None = None) -> str:
        db = db or name()
        await self.execute(f"CREATE DATABASE {db}" + (f" OWNER {owner}" if owner else ""))
        return db

    async def drop_role(self, role: str) -> None:
        await self.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role)
        await self.execute(f"DROP ROLE IF EXISTS {role}")

    async def drop_database(self, db: str) -> None:
        await self.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")

    async def set_setting(self, setting: str, value: str, *, reset: bool = False) -> None:
        """ALTER SYSTEM SET (or RESET, which must lead back to `value`) and reload, as an operator would; returns
        once a session sees the new value (the postmaster applies a reload asynchronously)."""
        if reset:
            await self.execute(f"ALTER SYSTEM RESET {setting}")
        else:
            await self.execute(f"ALTER SYSTEM SET {setting} = {literal(value)}")
        await self.execute("SELECT pg_reload_conf()")
        shown = None
        for _ in range(100):
            shown = (await self.fetch("SELECT current_setting($1) AS v", setting))[0]["v"]
            if shown == value:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"{setting} is still {shown!r} after the reload")

    async def fill(self, role: str, password: str, limit: int = 100) -> int:
        """Open sessions as `role` until the server refuses with 53300; return how many it took."""
        for _ in range(limit):
            try:
                conn = await asyncpg.connect(
                    host=self.cluster.host,
                    port=self.cluster.port,
                    user=role,
                    password=password,
                    database="postgres",
                    ssl=False,
                )
            except asyncpg.TooManyConnectionsError:
                return len(self.fillers)
            self.fillers.append(conn)
        raise AssertionError(f"the server took {limit} sessions without refusing")

    async def release(self) -> None:
        """Close every session fill() opened."""
        fillers, self.fillers = self.fillers, []
        for conn in fillers:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)

    async def close(self) -> None:
        await self.release()
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()
        self._drop()


class MyControl:
    """The shared MariaDB as root, limited to this suite's own users (created here, dropped on close)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self._conn: Any = None
        self._lock = asyncio.Lock()
        self.users: set[str] = set()
        self.fillers: list[Any] = []

    async def execute(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        async with self._lock:
            try:
                return await self._execute(sql, args)
            except (pymysql.err.OperationalError, pymysql.err.InterfaceError) as exc:
                if exc.args and exc.args[0] not in (2006, 2013, 0):
                    raise
                self._drop()  # the (private) server restarted under us: once more, on a new connection
                return await self._execute(sql, args)

    async def _execute(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        if self._conn is not None and self._conn.closed:  # aiomysql closes a connection whose query was cancelled
            self._conn = None  # (the session watcher is cancelled at the end of each fault, maybe mid-query)
        if self._conn is None:
            self._conn = await aiomysql.connect(
                host=self.server.host,
                port=self.server.port,
                user=self.server.admin_user,
                password=self.server.admin_password,
                autocommit=True,
                connect_timeout=5,
            )
        async with self._conn.cursor() as cursor:
            await cursor.execute(sql, args or None)
            return list(await cursor.fetchall())

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def user(self, password: str, user: str | None = None, max_connections: int = 0) -> str:
        user = user or name()
        limit = f" WITH MAX_USER_CONNECTIONS {max_connections}" if max_connections else ""
        await self.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s{limit}", password)
        self.users.add(user)
        return user

    async def set_password(self, user: str, password: str) -> None:
        await self.execute(f"ALTER USER '{user}'@'%%' IDENTIFIED BY %s", password)

    async def drop_user(self, user: str) -> None:
        await self.execute(f"DROP USER '{user}'@'%'")
        self.users.discard(user)

    async def thread_ids(self, user: str) -> list[int]:
        rows = await self.execute("SELECT id FROM information_schema.processlist WHERE user = %s ORDER BY id", user)
        return [int(row[0]) for row in rows]

    async def kill(self, thread_id: int) -> None:
        with contextlib.suppress(pymysql.err.OperationalError):  # it may have ended meanwhile
            await self.execute(f"KILL {int(thread_id)}")

    async def fill(self, user: str, password: str, limit: int = 20) -> int:
        """Log in as `user` until the server refuses (or `limit` sessions are open); return how many."""
        for _ in range(limit):
            try:
                conn = await aiomysql.connect(
                    host=self.server.host, port=self.server.port, user=user, password=password, connect_timeout=5
                )
            except pymysql.err.OperationalError:
                return len(self.fillers)
            self.fillers.append(conn)
        return len(self.fillers)

    async def release(self) -> None:
        fillers, self.fillers = self.fillers, []
        for conn in fillers:
            conn.close()

    async def close(self) -> None:
        await self.release()
        for user in list(self.users):
            for thread_id in await self.thread_ids(user):
                await self.kill(thread_id)
            await self.drop_user(user)
        if self._conn is not None:
            await self._conn.ensure_closed()
            self._conn = None


class HostsFile:
    """The JSON hosts file the tests' resolver (tests/support/resolver) reads on every lookup of the agent."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._table: dict[str, str] = {}
        self._write()

    def set(self, host: str, address: str) -> None:
        self._table[host] = address
        self._write()

    def remove(self, host: str) -> None:
        self._table.pop(host, None)
        self._write()

    def _write(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self._table))
        os.replace(temporary, self.path)  # atomic: a lookup never reads half a file
