"""Password expiry and connection headroom on PostgreSQL (agent.probes.drivers.limits, agent.probes.expiry), on
real clusters: VALID UNTIL in 7 days and in the past, a hardened server, max_connections nearly used up; and the
MySQL expiry arithmetic. The shared helpers (run, status_entry) serve test_db_limits_mysql.py too."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from pydantic import SecretStr

from agent.config.dsn import Engine
from agent.outputs.report import as_checklist
from agent.probes.base import ProbeResult, TargetState
from agent.probes.db import DatabaseProbe
from agent.probes.drivers.limits import mysql_expiry, unreadable
from agent.probes.runner import run_probe
from agent.sandbox.postgres import PostgresSandbox, SandboxError
from agent.shared.reasons import Reason, Scope
from tests.outputs.test_metrics import Samples, parse, value
from tests.support.databases import (
    PgAdmin,
    Server,
    assert_no_secret,
    random_name,
    random_password,
    target_for,
)
from tests.support.http import fetch, ready_state, serve
from tests.support.results import make_config

TIMEOUT = 3.0
DAY = 86400


async def run(probe: DatabaseProbe) -> ProbeResult:
    """One run through the real runner, as `check` and `serve` make it."""
    result = await run_probe(probe, TIMEOUT)
    print(as_checklist([result]))  # the exact `check` text, for the record (pytest -s)
    return result


async def status_entry(result: ProbeResult) -> tuple[dict[str, Any], Samples]:
    """/status's db entry and /metrics' samples after the result (recorded as target `writer`)."""
    state = ready_state(make_config())
    state.record(replace(result, target="writer"))
    async with serve(state) as base:
        status = (await fetch(f"{base}/status")).body
        metrics = (await fetch(f"{base}/metrics")).body.decode()
    return next(p for p in status["probes"] if p["probe"] == "db"), parse(metrics)


# -- the arithmetic ---------------------------------------------------------------------------------------------

CHANGED = 1_800_000_000  # 2027-01-15T08:00:00Z


@pytest.mark.parametrize(
    ("last_changed", "lifetime", "default", "expected"),
    [
        (CHANGED, None, 0, "never"),  # MySQL: NULL lifetime takes default_password_lifetime, 0 is never
        (CHANGED, None, 90, "2027-04-15T08:00:00+00:00"),
        (CHANGED, 0, 90, "never"),  # the account's own PASSWORD EXPIRE NEVER wins
        (CHANGED, 30, 0, "2027-02-14T08:00:00+00:00"),
        (str(CHANGED), "-1", 7, "2027-01-22T08:00:00+00:00"),  # MariaDB's JSON: strings, -1 for the default
        ("0", "-1", 7, "unknown (the account records no password change time or lifetime)"),  # PASSWORD EXPIRE
        (CHANGED, "x", None, "unknown (the account records no password change time or lifetime)"),
    ],
)
def test_mysql_expiry_from_the_account_row(
    last_changed: object, lifetime: object, default: object, expected: str
) -> None:
    """password_last_changed + the account's lifetime, else default_password_lifetime; 0 days is never."""
    assert mysql_expiry(last_changed, lifetime, default) == expected


def test_an_unreadable_account_table_says_why() -> None:
    assert unreadable("mysql.user", 1142, "SELECT command denied") == "unknown (the user has no SELECT on mysql.user)"
    assert unreadable("mysql.global_priv", 1146, "Table doesn't exist") == (
        "unknown (mysql.global_priv cannot be read: Table doesn't exist)"
    )


# -- PostgreSQL: VALID UNTIL ------------------------------------------------------------------------------------


async def pg_role(admin: PgAdmin, valid_until: datetime | str) -> tuple[str, str]:
    password = random_password()
    role = await admin.role(password)
    moment = valid_until if isinstance(valid_until, str) else valid_until.isoformat()
    await admin.conn.execute(f"ALTER ROLE {role} VALID UNTIL '{moment}'")
    return role, password


def pg_probe(admin: PgAdmin, role: str, password: str) -> DatabaseProbe:
    return pg_probe_on(admin.server, role, password)


def pg_probe_on(server: Server, role: str, password: str) -> DatabaseProbe:
    target = target_for(server, role, password=SecretStr(password), database="postgres")
    return DatabaseProbe(target, TargetState(), timeout=TIMEOUT)


async def test_pg_valid_until_in_7_days_passes_and_status_and_check_warn(pg_cluster_admin: PgAdmin) -> None:
    """The role's rolvaliduntil is read at the login: a pass, with the 14-day warning in check and /status."""
    expires = datetime.now(UTC) + timedelta(days=7)
    role, password = await pg_role(pg_cluster_admin, expires)
    result = await run(pg_probe(pg_cluster_admin, role, password))
    assert result.ok, result.message
    read = datetime.fromisoformat(result.details["password_expires_at"])
    assert abs(read.timestamp() - expires.timestamp()) < 1
    assert "        warning: the login's password expires in 7.0 days, on " in as_checklist([result])
    entry, samples = await status_entry(result)
    assert entry["database"]["warnings"][0].startswith("the login's password expires in 7.0 days")
    gauge = value(samples, "health_agent_db_password_expiry_timestamp_seconds", target="writer")
    assert gauge == pytest.approx(expires.timestamp(), abs=1)


async def test_pg_role_without_valid_until_never_expires(pg_cluster_admin: PgAdmin) -> None:
    """VALID UNTIL 'infinity' reads as never: no warning, no expiry gauge."""
    role, password = await pg_role(pg_cluster_admin, "infinity")
    result = await run(pg_probe(pg_cluster_admin, role, password))
    assert result.ok and result.details["password_expires_at"] == "never"
    entry, samples = await status_entry(result)
    assert "warnings" not in entry["database"] or entry["database"]["warnings"] == []
    assert not [name for name, _ in samples if name == "health_agent_db_password_expiry_timestamp_seconds"]


async def test_pg_login_refused_after_the_known_valid_until_is_password_expired(pg_cluster_admin: PgAdmin) -> None:
    """A 28P01 once the VALID UNTIL read at an earlier login has passed is db:password_expired (shared), naming
    the date and ALTER ROLE ... VALID UNTIL; a probe that never logged in says only 28P01."""
    expires = datetime.now(UTC) + timedelta(seconds=1.5)
    role, password = await pg_role(pg_cluster_admin, expires)
    probe = pg_probe(pg_cluster_admin, role, password)
    assert (await run(probe)).ok
    await asyncio.sleep(max(0.0, expires.timestamp() - time.time()) + 0.3)
    result = await run(probe)
    assert (result.ok, result.reason, result.code, result.scope) == (
        False,
        Reason.AUTH,
        "db:password_expired",
        Scope.SHARED,
    )
    date = datetime.fromtimestamp(int(expires.timestamp()), UTC).isoformat()
    assert result.message.startswith(f"the password of {role} expired on {date} (VALID UNTIL, read at the login at")
    assert "SQLSTATE" not in result.message and "login rejected" in result.message
    assert f"ALTER ROLE {role} VALID UNTIL 'infinity';" in result.hint and f"expired on {date}" in result.hint
    assert_no_secret(result, password)
    fresh = await run(pg_probe(pg_cluster_admin, role, password))
    assert fresh.code == "pg:28P01"  # the wire says nothing of the expiry: only an earlier login knows it
    await pg_cluster_admin.conn.execute(f"ALTER ROLE {role} VALID UNTIL 'infinity'")
    assert (await run(probe)).ok  # the hint's statement fixes it, with the same password


async def test_pg_secret_reread_unchanged_after_the_expiry_is_password_expired(pg_cluster_admin: PgAdmin) -> None:
    """With a secret: the rejection re-reads it (unchanged: "still holds the rejected password"), and the known
    expiry explains it: db:password_expired, the secret's own finding kept in the message."""
    expires = datetime.now(UTC) + timedelta(seconds=1.5)
    role, password = await pg_role(pg_cluster_admin, expires)
    state = TargetState(secret_password=SecretStr(password), secret_user=role)
    rereads = []

    async def refresh() -> None:  # Secrets Manager answers with the same password
        rereads.append(time.monotonic())

    target = target_for(pg_cluster_admin.server, None, secret_id="orders/db", database="postgres")
    probe = DatabaseProbe(target, state, timeout=TIMEOUT, refresh_secret=refresh)
    assert (await run(probe)).ok
    await asyncio.sleep(max(0.0, expires.timestamp() - time.time()) + 0.3)
    result = await run(probe)
    assert (result.code, result.scope, len(rereads)) == ("db:password_expired", Scope.SHARED, 1)
    assert result.message.startswith(f"the password of {role} expired on ")
    assert result.message.endswith("secret orders/db was fetched again and still holds the rejected password")


async def test_pg_same_password_refused_after_a_pass_says_the_server_side_changed(pg_cluster_admin: PgAdmin) -> None:
    """The password that logged in is refused before its known expiry: the message says the server changed."""
    role, password = await pg_role(pg_cluster_admin, datetime.now(UTC) + timedelta(days=30))
    probe = pg_probe(pg_cluster_admin, role, password)
    assert (await run(probe)).ok
    await pg_cluster_admin.conn.execute(f"ALTER ROLE {role} VALID UNTIL '2001-01-01'")
    result = await run(probe)
    assert result.code == "pg:28P01"
    assert f"this same password logged in as {role} at " in result.message
    assert "the role's password or VALID UNTIL was changed on the server since" in result.message


# -- PostgreSQL: connection headroom ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_pg() -> Iterator[PostgresSandbox]:
    """A throwaway cluster with 12 connections, 2 of them reserved for superusers: 10 for everyone else."""
    try:
        cluster = PostgresSandbox(settings={"max_connections": "12", "superuser_reserved_connections": "2"})
        cluster.start()
    except SandboxError as exc:
        pytest.fail(f"cannot start a throwaway PostgreSQL cluster: {exc}", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.cleanup()


@contextlib.asynccontextmanager
async def idle_pg_sessions(cluster: PostgresSandbox, count: int) -> AsyncIterator[list[Any]]:
    """`count` idle sessions held open as the admin, closed on exit."""
    sessions = [await asyncpg.connect(cluster.admin_dsn()) for _ in range(count)]
    try:
        yield sessions
    finally:
        for session in sessions:
            await session.close()


async def test_pg_connections_nearly_used_up_warn_at_90_percent(small_pg: PostgresSandbox) -> None:
    """client backends / (max_connections - reserved): 9 of 10 warns and shows on the gauges; 8 of 10 does not."""
    server = Server(Engine.POSTGRESQL, small_pg.host, small_pg.port, small_pg.admin_user, "", "postgres")
    admin = await asyncpg.connect(small_pg.admin_dsn())
    role, password = random_name(), random_password()
    await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    target = target_for(server, role, password=SecretStr(password), database="postgres")
    try:
        async with idle_pg_sessions(small_pg, 7):  # + the admin + the probe's own = 9
            full = await run(DatabaseProbe(target, TargetState(), timeout=TIMEOUT))
        fewer = await run(DatabaseProbe(target, TargetState(), timeout=TIMEOUT))
    finally:
        await admin.execute(f"DROP ROLE {role}")
        await admin.close()
    assert (full.details["connections"], full.details["max_connections"]) == ("9", "10")
    assert "        warning: 9 of 10 connections in use (90%): new logins are refused when none are left" in (
        as_checklist([full])
    )
    entry, samples = await status_entry(full)
    assert entry["database"]["warnings"] == [
        "9 of 10 connections in use (90%): new logins are refused when none are left"
    ]
    assert value(samples, "health_agent_db_connections", target="writer") == 9
    assert value(samples, "health_agent_db_max_connections", target="writer") == 10
    assert fewer.ok and fewer.details["connections"] == "2" and "warning" not in as_checklist([fewer])


async def test_pg_facts_the_role_may_not_read_are_unknown_and_the_check_passes(small_pg: PostgresSandbox) -> None:
    """pg_roles revoked from PUBLIC (a hardened server): the check passes, the expiry is "unknown (why)"."""
    server = Server(Engine.POSTGRESQL, small_pg.host, small_pg.port, small_pg.admin_user, "", "postgres")
    admin = await asyncpg.connect(small_pg.admin_dsn())
    role, password = random_name(), random_password()
    await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    await admin.execute("REVOKE SELECT ON pg_roles FROM PUBLIC")
    try:
        result = await run(pg_probe_on(server, role, password))
    finally:
        await admin.execute("GRANT SELECT ON pg_roles TO PUBLIC")
        await admin.execute(f"DROP ROLE {role}")
        await admin.close()
    assert result.ok, result.message
    assert result.details["password_expires_at"] == "unknown (permission denied for view pg_roles)"
    assert "connections" not in result.details
