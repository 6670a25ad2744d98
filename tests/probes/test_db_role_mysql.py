"""Writer or reader on MariaDB: a private server started with --read-only=ON, and the machine's writable one."""

from __future__ import annotations

from collections.abc import Iterator

import pymysql
import pytest
from pydantic import SecretStr

from agent.config.dsn import Engine
from agent.config.models import ExpectRole
from agent.probes.base import ProbeResult, TargetState
from agent.probes.db import DatabaseProbe
from agent.probes.drivers import mysql
from agent.probes.runner import run_probe
from agent.shared.reasons import Reason, Scope
from tests.faults.private_mariadb import PrivateMariaDB
from tests.support.databases import MySqlAdmin, Server, random_name, random_password, target_for

TIMEOUT = 5.0


@pytest.fixture(scope="module")
def read_only_mariadb() -> Iterator[tuple[PrivateMariaDB, str, str]]:
    """A private MariaDB with --read-only=ON and an ordinary user (no SUPER, so writes are refused): (server, user,
    password)."""
    server = PrivateMariaDB()
    user, password = random_name(), random_password()
    try:
        server.install()
        server.start(extra=("--read-only=ON",))
        conn = pymysql.connect(host=server.host, port=server.port, user="root", connect_timeout=5)
        try:
            with conn.cursor() as cursor:  # root has SUPER (READ ONLY ADMIN): read_only does not stop it
                cursor.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (password,))
                cursor.execute(f"GRANT ALL ON test_role.* TO '{user}'@'%'")
        finally:
            conn.close()
        yield server, user, password
    finally:
        server.cleanup()


async def check(server: Server, user: str, password: str, role: ExpectRole) -> ProbeResult:
    config = target_for(server, user, password=SecretStr(password), expect_role=role)
    return await run_probe(DatabaseProbe(config, TargetState(), timeout=TIMEOUT), TIMEOUT)


async def test_a_writer_target_at_a_read_only_mariadb_is_read_only(
    read_only_mariadb: tuple[PrivateMariaDB, str, str],
) -> None:
    private, user, password = read_only_mariadb
    server = Server(Engine.MYSQL, private.host, private.port, "root", "", None)
    result = await check(server, user, password, ExpectRole.WRITER)
    assert (result.reason, result.code, result.scope) == (Reason.SERVER, "db:read_only", Scope.SHARED)
    assert result.message == (
        "expected a writer (expect_role=writer), but 127.0.0.1 resolved to 127.0.0.1, where @@global.read_only is on"
    )
    assert result.hint.startswith("127.0.0.1 resolved to 127.0.0.1, and the server there is read-only")
    assert (result.details["read_only"], result.details["resolved_address"]) == ("yes", "127.0.0.1")
    passing = await check(server, user, password, ExpectRole.READER)
    assert passing.ok and passing.details["read_only"] == "yes", passing.message


async def test_a_reader_target_at_the_writable_mariadb_is_not_a_reader(mysql_admin: MySqlAdmin) -> None:
    password = random_password()
    user = await mysql_admin.user(password)
    result = await check(mysql_admin.server, user, password, ExpectRole.READER)
    assert (result.reason, result.code, result.scope) == (Reason.SERVER, "db:not_a_reader", Scope.SHARED)
    assert "@@global.read_only and @@global.innodb_read_only are off" in result.message
    assert "Aurora's reader endpoint connects to the writer" in result.hint
    passing = await check(mysql_admin.server, user, password, ExpectRole.ANY)
    assert passing.ok and passing.details["read_only"] == "no"


def test_a_write_refused_by_the_read_only_server_is_read_only(
    read_only_mariadb: tuple[PrivateMariaDB, str, str],
) -> None:
    """1290 (--read-only), as the backend meets it, gets the role's code; 1836 (read-only mode) too."""
    private, user, password = read_only_mariadb
    conn = pymysql.connect(host=private.host, port=private.port, user=user, password=password, connect_timeout=5)
    try:
        with pytest.raises(pymysql.err.MySQLError) as raised, conn.cursor() as cursor:
            cursor.execute("CREATE DATABASE test_role")
    finally:
        conn.close()
    assert raised.value.args[0] == 1290
    for error in (raised.value, pymysql.err.OperationalError(1836, "Running in read-only mode")):
        failure = mysql.classify(error)
        assert failure is not None and (failure.reason, failure.code) == (Reason.SERVER, "db:read_only")
