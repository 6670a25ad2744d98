"""What the configuration means, proven by real logins (`check --json` against the real PostgreSQL and MariaDB):
the account a connection's own DSN names, the empty password, the TLS spellings, and hints that name where the
password and the database name really came from (issue 13, section 1)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from tests.support.agent_process import run_agent
from tests.support.databases import MySqlAdmin, PgAdmin, Server, random_password
from tests.support.secrets import remember


async def check(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any]]:
    proc = await asyncio.to_thread(run_agent, "check", "--json", *args, env={"AGENT_TIMEOUT_SECONDS": "3", **env})
    assert proc.returncode in (0, 1), (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    return proc.returncode, report


def db_probe(report: dict[str, Any], target: str = "default") -> dict[str, Any]:
    found: list[dict[str, Any]] = [p for p in report["probes"] if p["probe"] == "db" and p["target"] == target]
    (probe,) = found
    return probe


def mysql_address(server: Server) -> str:
    return f"{server.host}:{server.port}"


async def test_a_connections_own_account_is_the_one_that_logs_in(
    tmp_path: Path, mysql_server: Server, mysql_admin: MySqlAdmin
) -> None:
    """The issue's case: `legacy` has its own user and password in its DSN, the globals name another account
    that works. A wrong `legacy` password must fail: logging in as the global account was a false PASS."""
    app_password, legacy_password = remember(random_password()), remember(random_password())
    app = await mysql_admin.user(app_password)
    legacy = await mysql_admin.user(legacy_password)
    wrong = remember(random_password())
    globals_ = {"AGENT_DB_USER": app, "AGENT_DB_PASSWORD": app_password}
    path = tmp_path / "agent.yaml"
    for password, passes in ((legacy_password, True), (wrong, False)):
        dsn = f"mysql://{legacy}:{password}@{mysql_address(mysql_server)}/?sslmode=disable"
        await asyncio.to_thread(path.write_text, f"database:\n  connections:\n    legacy:\n      dsn: '{dsn}'\n")
        code, report = await check(globals_, "--config", str(path))
        probe = db_probe(report, "legacy")
        assert (code, probe["ok"]) == (0 if passes else 1, passes), probe
    assert (probe["reason"], probe["code"]) == ("auth", "mysql:1045")
    assert legacy in probe["hint"] and app not in probe["hint"]
    assert "(the password in database.connections.legacy.dsn)" in probe["hint"]


async def test_a_failing_dsn_password_is_blamed_on_the_dsn(mysql_server: Server, mysql_admin: MySqlAdmin) -> None:
    """It used to blame AGENT_DB_PASSWORD, which was not even set."""
    user = await mysql_admin.user(remember(random_password()))
    dsn = f"mysql://{user}:{remember(random_password())}@{mysql_address(mysql_server)}/?sslmode=disable"
    code, report = await check({"AGENT_DB_DSN": dsn})
    probe = db_probe(report)
    assert (code, probe["reason"]) == (1, "auth")
    assert "(the password in AGENT_DB_DSN)" in probe["hint"] and "AGENT_DB_PASSWORD" not in probe["hint"]


async def test_an_empty_password_logs_in(mysql_server: Server, mysql_admin: MySqlAdmin) -> None:
    """`user:@host` is the empty password, a real one; it used to read as no password at all (exit 2)."""
    user = await mysql_admin.user("")
    code, report = await check({"AGENT_DB_DSN": f"mysql://{user}:@{mysql_address(mysql_server)}/?sslmode=disable"})
    assert (code, db_probe(report)["ok"]) == (0, True), report


async def test_a_dsn_without_a_database_says_so_in_the_hint(pg_server: Server, pg_admin: PgAdmin) -> None:
    """PostgreSQL then uses the user's name; the hint used to send the user to "the name at the end of the DSN"."""
    password = remember(random_password())
    user = await pg_admin.role(password)
    dsn = f"postgresql://{user}@{pg_server.host}:{pg_server.port}"
    code, report = await check({"AGENT_DB_DSN": dsn, "AGENT_DB_PASSWORD": password})
    probe = db_probe(report)
    assert (code, probe["code"]) == (1, "pg:3D000")
    assert f"Database {user} does not exist" in probe["hint"]
    assert "names no database, so PostgreSQL used the user's name" in probe["hint"]
    assert "the name at the end of the DSN" not in probe["hint"]


async def test_tls_spellings_keep_their_meaning_against_a_server_without_tls(
    pg_server: Server, pg_admin: PgAdmin, mysql_server: Server, mysql_admin: MySqlAdmin
) -> None:
    """Neither test server offers TLS. A spelling that asks for TLS fails as `tls`; one that turns it off logs in.
    `?ssl=true` used to be dropped: a plaintext login and exit 0."""
    pg_password, my_password = remember(random_password()), remember(random_password())
    pg_user, my_user = await pg_admin.role(pg_password), await mysql_admin.user(my_password)
    pg = f"postgresql+asyncpg://{pg_user}@{pg_server.host}:{pg_server.port}/{pg_server.admin_database}"
    my = f"mysql+aiomysql://{my_user}@{mysql_address(mysql_server)}/"
    cases = [
        (pg, pg_password, "ssl=true", False),
        (pg, pg_password, "ssl=require", False),
        (pg, pg_password, "ssl=false", True),
        (my, my_password, "ssl-mode=REQUIRED", False),
        (my, my_password, "ssl-mode=VERIFY_IDENTITY", False),
        (my, my_password, "ssl-mode=DISABLED", True),
    ]
    for dsn, password, query, passes in cases:
        code, report = await check({"AGENT_DB_DSN": f"{dsn}?{query}", "AGENT_DB_PASSWORD": password})
        probe = db_probe(report)
        assert (code, probe["ok"]) == (0 if passes else 1, passes), (query, probe)
        if not passes:
            assert probe["reason"] == "tls", (query, probe)
