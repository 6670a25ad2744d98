"""Password expiry and connection headroom on MariaDB (agent.probes.drivers.limits): PASSWORD EXPIRE (1820 in
sandbox mode, 1862 on a server that disconnects), an account that may not read mysql.global_priv, the account's and
the server's default lifetime, and max_connections nearly used up (a private server)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import aiomysql
import pytest
from pydantic import SecretStr

from agent.config.dsn import Engine
from agent.outputs.report import as_checklist
from agent.probes.base import TargetState
from agent.probes.db import DatabaseProbe
from agent.shared.reasons import Reason, Scope
from tests.faults.private_mariadb import PrivateMariaDB
from tests.outputs.test_metrics import value
from tests.probes.test_db_limits import DAY, TIMEOUT, run, status_entry
from tests.support.databases import MySqlAdmin, Server, assert_no_secret, random_name, random_password, target_for


async def mysql_user(admin: MySqlAdmin, *, read_accounts: bool = False, extra: str = "") -> tuple[str, str]:
    password = random_password()
    user = await admin.user(password)
    if read_accounts:
        await admin.execute(f"GRANT SELECT ON mysql.global_priv TO '{user}'@'%'")
    if extra:
        await admin.execute(f"ALTER USER '{user}'@'%' {extra}")
    return user, password


def mysql_probe(server: Server, user: str, password: str) -> DatabaseProbe:
    return DatabaseProbe(target_for(server, user, password=SecretStr(password)), TargetState(), timeout=TIMEOUT)


async def test_mariadb_expired_password_sandbox_mode_is_password_expired(mysql_admin: MySqlAdmin) -> None:
    """PASSWORD EXPIRE: MariaDB lets the login in and refuses SELECT 1 with 1820: db:password_expired, shared,
    with ALTER USER ... IDENTIFIED BY and PASSWORD EXPIRE NEVER in the hint."""
    user, password = await mysql_user(mysql_admin, extra="PASSWORD EXPIRE")
    result = await run(mysql_probe(mysql_admin.server, user, password))
    assert (result.reason, result.code, result.scope) == (Reason.AUTH, "db:password_expired", Scope.SHARED)
    assert result.message.startswith("password expired (nothing runs until it is changed): You must SET PASSWORD")
    assert f"ALTER USER '{user}'@'%' IDENTIFIED BY '...';" in result.hint
    assert f"ALTER USER '{user}'@'%' PASSWORD EXPIRE NEVER;" in result.hint
    assert_no_secret(result, password)


async def test_mariadb_password_expired_by_an_admin_after_a_pass_names_what_was_read(mysql_admin: MySqlAdmin) -> None:
    """PASSWORD EXPIRE after a login that read the expiry: the 1820 failure says what that login read."""
    user, password = await mysql_user(mysql_admin, read_accounts=True, extra="PASSWORD EXPIRE INTERVAL 30 DAY")
    probe = mysql_probe(mysql_admin.server, user, password)
    passed = await run(probe)
    assert passed.ok, passed.message
    await mysql_admin.execute(f"ALTER USER '{user}'@'%' PASSWORD EXPIRE")
    result = await run(probe)
    assert (result.code, result.scope) == ("db:password_expired", Scope.SHARED)
    read = passed.details["password_expires_at"]
    assert result.message.endswith(f"read that it would expire on {read}"), result.message
    assert f"The password of {user} on 127.0.0.1 has expired: " in result.hint  # not on the date read: earlier


async def test_mariadb_expiry_read_from_global_priv_warns_within_14_days(mysql_admin: MySqlAdmin) -> None:
    """An account that may read mysql.global_priv: password_last_changed + PASSWORD EXPIRE INTERVAL 7 DAY."""
    user, password = await mysql_user(mysql_admin, read_accounts=True, extra="PASSWORD EXPIRE INTERVAL 7 DAY")
    result = await run(mysql_probe(mysql_admin.server, user, password))
    assert result.ok, result.message
    read = datetime.fromisoformat(result.details["password_expires_at"])
    assert abs(read.timestamp() - (time.time() + 7 * DAY)) < 5
    assert "        warning: the login's password expires in 7.0 days, on " in as_checklist([result])
    never, never_password = await mysql_user(mysql_admin, read_accounts=True, extra="PASSWORD EXPIRE NEVER")
    assert (await run(mysql_probe(mysql_admin.server, never, never_password))).details["password_expires_at"] == (
        "never"
    )


async def test_mariadb_user_without_select_on_mysql_says_unknown_and_why(mysql_admin: MySqlAdmin) -> None:
    """An application account: the expiry is "unknown (why)" in check and /status; the probe passes, and the
    connection counts are read all the same."""
    user, password = await mysql_user(mysql_admin)
    result = await run(mysql_probe(mysql_admin.server, user, password))
    unknown = "unknown (the user has no SELECT on mysql.global_priv)"
    assert result.ok and result.details["password_expires_at"] == unknown
    assert f"password_expires_at={unknown}" in as_checklist([result])
    assert int(result.details["connections"]) >= 1 and int(result.details["max_connections"]) >= 1
    entry, samples = await status_entry(result)
    assert entry["database"]["password_expires_at"] == unknown
    assert not [name for name, _ in samples if name == "health_agent_db_password_expiry_timestamp_seconds"]


@pytest.fixture(scope="module")
def strict_mariadb() -> Iterator[PrivateMariaDB]:
    """A private MariaDB that refuses expired passwords at login and allows 12 connections."""
    try:
        server = PrivateMariaDB()
        server.install()
        server.start(extra=("--disconnect-on-expired-password=ON", "--max-connections=12"))
    except RuntimeError as exc:
        pytest.fail(f"cannot start a private MariaDB server: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.cleanup()


@contextlib.asynccontextmanager
async def mysql_root(server: PrivateMariaDB, sessions: int = 1) -> AsyncIterator[list[Any]]:
    """Sessions of root on the private server, closed on exit."""
    opened = [
        await aiomysql.connect(host=server.host, port=server.port, user="root", autocommit=True)
        for _ in range(sessions)
    ]
    try:
        yield opened
    finally:
        for conn in opened:
            conn.close()


async def test_mariadb_refusing_an_expired_password_at_login_is_password_expired(
    strict_mariadb: PrivateMariaDB,
) -> None:
    """disconnect_on_expired_password=ON: 1862 at login, the same code and hint as sandbox mode's 1820."""
    server = Server(Engine.MYSQL, strict_mariadb.host, strict_mariadb.port, "root", "", None)
    user, password = random_name(), random_password()
    async with mysql_root(strict_mariadb) as (root,), root.cursor() as cursor:
        await cursor.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s PASSWORD EXPIRE", (password,))
    result = await run(mysql_probe(server, user, password))
    assert (result.reason, result.code, result.scope) == (Reason.AUTH, "db:password_expired", Scope.SHARED)
    assert result.message.startswith("password expired: Your password has expired")
    assert f"ALTER USER '{user}'@'%' IDENTIFIED BY '...';" in result.hint


async def test_mariadb_connections_nearly_used_up_warn(strict_mariadb: PrivateMariaDB) -> None:
    """Threads_connected / max_connections: 11 of 12 (the probe's own included) warns; 3 of 12 does not."""
    server = Server(Engine.MYSQL, strict_mariadb.host, strict_mariadb.port, "root", "", None)
    user, password = random_name(), random_password()
    async with mysql_root(strict_mariadb, 10) as held:
        async with held[0].cursor() as cursor:
            await cursor.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (password,))
        full = await run(mysql_probe(server, user, password))
        for conn in held[2:]:
            conn.close()
        await asyncio.sleep(0.2)  # the server ends the closed sessions asynchronously
        fewer = await run(mysql_probe(server, user, password))
    assert (full.details["connections"], full.details["max_connections"]) == ("11", "12")
    assert "        warning: 11 of 12 connections in use (92%): new logins are refused when none are left" in (
        as_checklist([full])
    )
    _, samples = await status_entry(full)
    assert value(samples, "health_agent_db_connections", target="writer") == 11
    assert value(samples, "health_agent_db_max_connections", target="writer") == 12
    assert fewer.details["connections"] == "3" and "warning" not in as_checklist([fewer])


async def test_mariadb_default_password_lifetime_applies_to_an_account_without_its_own(
    strict_mariadb: PrivateMariaDB,
) -> None:
    """default_password_lifetime = 10 (days): an account that may read mysql.global_priv expires 10 days after its
    password was set, and check warns."""
    server = Server(Engine.MYSQL, strict_mariadb.host, strict_mariadb.port, "root", "", None)
    user, password = random_name(), random_password()
    async with mysql_root(strict_mariadb) as (root,), root.cursor() as cursor:
        await cursor.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (password,))
        await cursor.execute(f"GRANT SELECT ON mysql.global_priv TO '{user}'@'%'")
        await cursor.execute("SET GLOBAL default_password_lifetime = 10")
        try:
            result = await run(mysql_probe(server, user, password))
        finally:
            await cursor.execute("SET GLOBAL default_password_lifetime = 0")
    read = datetime.fromisoformat(result.details["password_expires_at"])
    assert abs(read.timestamp() - (time.time() + 10 * DAY)) < 5
    assert "        warning: the login's password expires in 10.0 days, on " in as_checklist([result])
