"""`ecs-health-agent check` end to end: a real process against real databases, moto and loopback stand-ins.

Each situation of the diagnostics guide gives the right reason for the right probe and the right exit code.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from agent.sandbox.aws import CredentialsEndpoint, EndpointMode
from tests.support.agent_process import run_agent
from tests.support.aws import RDS_HOST, REGION, AwsEnv, Moto
from tests.support.databases import MySqlAdmin, PgAdmin, Server, random_password
from tests.support.hermetic import NO_SUCH_DB_HOST
from tests.support.ports import refused_port
from tests.support.secrets import remember

TIMEOUT = {"AGENT_TIMEOUT_SECONDS": "2"}


def pg_dsn(server: Server, user: str, database: str | None = None, query: str = "") -> str:
    return f"postgresql://{user}@{server.host}:{server.port}/{database or server.admin_database}{query}"


async def check(env: dict[str, str]) -> tuple[int, dict[str, Any], str]:
    """Run `check --json` off the event loop: the loopback stand-ins the agent talks to live on it."""
    proc = await asyncio.to_thread(run_agent, "check", "--json", env={**TIMEOUT, **env})
    assert "Traceback" not in proc.stderr, proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    return proc.returncode, report, proc.stderr


def only(report: dict[str, Any], probe: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [p for p in report["probes"] if p["probe"] == probe]
    (one,) = found
    return one


async def test_postgres_password_login_passes(pg_server: Server, pg_admin: PgAdmin) -> None:
    password = remember(random_password())
    user = await pg_admin.role(password)
    code, report, _ = await check({"AGENT_DB_DSN": pg_dsn(pg_server, user), "AGENT_DB_PASSWORD": password})
    assert (code, report["ok"]) == (0, True)
    assert [(p["probe"], p["target"], p["ok"]) for p in report["probes"]] == [("db", "default", True)]
    assert set(report["probes"][0]) == {
        "probe",
        "target",
        "ok",
        "reason",
        "scope",
        "code",
        "message",
        "hint",
        "duration_ms",
        "database",  # what the login read beyond "it answers" (agent.probes.db_facts)
    }
    database = report["probes"][0]["database"]
    assert (database["resolved_address"], database["read_only"], database["warnings"]) == (pg_server.host, False, [])
    assert database["password_expires_at"] == "never" and 1 <= database["connections"] < database["max_connections"]


async def test_mysql_password_login_passes(mysql_server: Server, mysql_admin: MySqlAdmin) -> None:
    password = remember(random_password())
    user = await mysql_admin.user(password)
    dsn = f"mysql://{user}@{mysql_server.host}:{mysql_server.port}/?sslmode=disable"
    code, report, _ = await check({"AGENT_DB_DSN": dsn, "AGENT_DB_PASSWORD": password})
    assert (code, report["ok"]) == (0, True), report


async def test_wrong_password_is_auth_with_a_hint(mysql_server: Server, mysql_admin: MySqlAdmin) -> None:
    """The incident: the task definition's password is stale."""
    user = await mysql_admin.user(remember(random_password()))
    dsn = f"mysql://{user}@{mysql_server.host}:{mysql_server.port}/"
    code, report, _ = await check({"AGENT_DB_DSN": dsn, "AGENT_DB_PASSWORD": remember(random_password())})
    db = only(report, "db")
    assert (code, db["reason"], db["code"]) == (1, "auth", "mysql:1045")
    assert user in db["hint"]


async def test_unknown_database_is_config(pg_server: Server, pg_admin: PgAdmin) -> None:
    password = remember(random_password())
    user = await pg_admin.role(password)
    env = {"AGENT_DB_DSN": pg_dsn(pg_server, user, "no_such_db"), "AGENT_DB_PASSWORD": password}
    code, report, _ = await check(env)
    assert (code, only(report, "db")["reason"], only(report, "db")["code"]) == (1, "config", "pg:3D000")


async def test_refused_port_is_network() -> None:
    env = {"AGENT_DB_DSN": f"postgresql://app@127.0.0.1:{refused_port()}/x", "AGENT_DB_PASSWORD": "whatever-pw"}
    code, report, _ = await check(env)
    assert (code, only(report, "db")["reason"]) == (1, "network")


async def test_unresolvable_host_is_dns() -> None:
    """The tests' resolver answers the declared name as the system answers an unknown one (EAI_NONAME)."""
    env = {"AGENT_DB_DSN": f"mysql://app@{NO_SUCH_DB_HOST}:3306/x", "AGENT_DB_PASSWORD": "whatever-pw"}
    code, report, _ = await check(env)
    assert (code, only(report, "db")["reason"], only(report, "db")["code"]) == (1, "dns", "db:dns")


async def test_listener_that_never_answers_is_timeout_after_the_tcp_handshake(silent_port: int) -> None:
    env = {"AGENT_DB_DSN": f"mysql://app@127.0.0.1:{silent_port}/x", "AGENT_DB_PASSWORD": "whatever-pw"}
    code, report, _ = await check(env)
    db = only(report, "db")
    assert (code, db["reason"]) == (1, "timeout")
    assert f"from 127.0.0.1:{silent_port} (TCP connected)" in db["message"]
    assert db["duration_ms"] < 2000 + 500


async def test_dropped_syn_is_timeout_naming_the_security_group(blackhole_port: int) -> None:
    """What a security group without the rule looks like: the TCP handshake never completes."""
    env = {"AGENT_DB_DSN": f"postgresql://app@127.0.0.1:{blackhole_port}/x", "AGENT_DB_PASSWORD": "whatever-pw"}
    code, report, _ = await check(env)
    db = only(report, "db")
    assert (code, db["reason"]) == (1, "timeout")
    assert "security group" in db["hint"] and str(blackhole_port) in db["hint"]
    assert db["duration_ms"] < 2000 + 500


async def test_tls_required_against_a_server_without_tls_is_tls(pg_server: Server, pg_admin: PgAdmin) -> None:
    password = remember(random_password())
    user = await pg_admin.role(password)
    env = {"AGENT_DB_DSN": pg_dsn(pg_server, user, query="?sslmode=require"), "AGENT_DB_PASSWORD": password}
    code, report, _ = await check(env)
    assert (code, only(report, "db")["reason"]) == (1, "tls")


async def test_no_aws_credentials_is_config_and_later_checks_say_they_did_not_run(aws_env: AwsEnv) -> None:
    """A task definition without a task role, configured for Secrets Manager."""
    env = {"AGENT_DB_DSN": "postgresql://127.0.0.1/x", "AGENT_DB_SECRET_ID": "prod/db", "AWS_REGION": REGION}
    code, report, _ = await check(env)
    creds, secret, db = report["probes"]
    assert (code, creds["probe"], creds["reason"], creds["code"]) == (1, "credentials", "config", "aws:no_credentials")
    assert (secret["code"], secret["reason"], db["code"]) == ("not_run", "config", "not_run")
    assert "credentials" in secret["message"]


async def test_credentials_endpoint_failures(
    moto_env: AwsEnv, moto: Moto, credentials_endpoint: CredentialsEndpoint
) -> None:
    """Down -> network, 500 -> server, 403 -> auth: what ECS's endpoint can do to a task."""
    moto_env.container(credentials_endpoint.url)
    env = {
        "AGENT_DB_DSN": f"postgresql://app@{RDS_HOST}:5432/orders",
        "AGENT_DB_IAM_AUTH": "true",
        "AGENT_TIMEOUT_SECONDS": "3",
    }
    for mode, reason in [
        (EndpointMode.SERVER_ERROR, "server"),
        (EndpointMode.FORBIDDEN, "auth"),
        (EndpointMode.STOPPED, "network"),
    ]:
        await credentials_endpoint.set_mode(mode)
        code, report, _ = await check(env)
        assert (code, only(report, "credentials")["reason"]) == (1, reason), (mode, report)


async def test_sts_rejecting_keys_is_auth(moto_env: AwsEnv) -> None:
    moto_env._mp.setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWN000000000")
    moto_env._mp.setenv("AWS_SECRET_ACCESS_KEY", remember("not-a-real-secret-key-value"))
    env = {"AGENT_DB_DSN": f"postgresql://app@{RDS_HOST}/orders", "AGENT_DB_IAM_AUTH": "true"}
    code, report, _ = await check(env)
    creds = only(report, "credentials")
    assert (code, creds["reason"], creds["code"]) == (1, "auth", "sts:InvalidClientTokenId")


async def test_throttling_is_throttled(aws_env: AwsEnv, aws_stub: Any) -> None:
    stub = await aws_stub("Throttling")
    aws_env.endpoint(stub.url)
    aws_env._mp.setenv("AWS_ACCESS_KEY_ID", "AKIASTUB000000000000")
    aws_env._mp.setenv("AWS_SECRET_ACCESS_KEY", "stub-secret-key-value")
    env = {"AGENT_DB_DSN": f"postgresql://app@{RDS_HOST}/orders", "AGENT_DB_IAM_AUTH": "true"}
    code, report, _ = await check(env)
    assert (code, only(report, "credentials")["reason"]) == (1, "throttled")


async def test_secret_missing_and_secret_without_password_are_config(
    moto_env: AwsEnv, moto: Moto, credentials_endpoint: CredentialsEndpoint
) -> None:
    moto_env.container(credentials_endpoint.url)
    base = {"AGENT_DB_DSN": "postgresql://app@127.0.0.1:5432/x", "AWS_REGION": REGION}
    code, report, _ = await check({**base, "AGENT_DB_SECRET_ID": "does/not/exist"})
    secret = only(report, "secret")
    assert (code, secret["reason"], secret["code"]) == (1, "config", "secretsmanager:ResourceNotFoundException")
    name, _ = await moto.secret({"username": "app", "host": "db"})
    code, report, _ = await check({**base, "AGENT_DB_SECRET_ID": name})
    assert (code, only(report, "secret")["code"], only(report, "db")["code"]) == (1, "secret:no_password", "not_run")


async def test_region_mismatch_is_config_naming_both_regions(
    moto_env: AwsEnv, credentials_endpoint: CredentialsEndpoint
) -> None:
    moto_env.container(credentials_endpoint.url)
    env = {"AGENT_DB_DSN": f"postgresql://app@{RDS_HOST}/orders", "AGENT_DB_IAM_AUTH": "1", "AWS_REGION": "us-east-2"}
    code, report, _ = await check(env)
    token = only(report, "token")
    assert (code, token["reason"], token["code"]) == (1, "config", "token:region_mismatch")
    assert "us-east-2" in token["message"] and REGION in token["message"]


async def test_password_drift_says_the_task_password_differs_from_the_secret(
    moto_env: AwsEnv,
    moto: Moto,
    credentials_endpoint: CredentialsEndpoint,
    pg_server: Server,
    pg_admin: PgAdmin,
) -> None:
    """The incident's root cause, named: a stale literal password while the secret holds the right one."""
    moto_env.container(credentials_endpoint.url)
    right, stale = remember(random_password()), remember(random_password())
    user = await pg_admin.role(right)
    name, _ = await moto.secret({"username": user, "password": right})
    env = {
        "AGENT_DB_DSN": pg_dsn(pg_server, user),
        "AGENT_DB_PASSWORD": stale,
        "AGENT_DB_SECRET_ID": name,
        "AWS_REGION": REGION,
    }
    code, report, stderr = await check(env)
    db = only(report, "db")
    assert (code, db["reason"], db["code"]) == (1, "auth", "db:password_drift")
    assert "differs" in db["message"] and name in db["message"]
    for value in (right, stale):
        assert value[:4] not in json.dumps(report) + stderr


async def test_iam_login_without_rds_iam_grant_is_auth_with_the_grant_sql(
    moto_env: AwsEnv, credentials_endpoint: CredentialsEndpoint, pg_tls_admin: PgAdmin, pg_tls_cluster: Any
) -> None:
    """Credentials and token pass; the database rejects the token: the guide's most common production error."""
    moto_env.container(credentials_endpoint.url)
    user = await pg_tls_admin.role(remember(random_password()))
    dsn = f"postgresql://{user}@127.0.0.1:{pg_tls_cluster.port}/postgres?sslmode=require"
    code, report, _ = await check({"AGENT_DB_DSN": dsn, "AGENT_DB_IAM_AUTH": "true", "AWS_REGION": REGION})
    assert [p["ok"] for p in report["probes"]] == [True, True, False]
    db = only(report, "db")
    assert (code, db["reason"]) == (1, "auth")
    assert f"GRANT rds_iam TO {user}" in db["hint"]


async def test_checklist_output_is_readable(pg_server: Server, pg_admin: PgAdmin) -> None:
    password = remember(random_password())
    user = await pg_admin.role(password)
    proc = await asyncio.to_thread(
        run_agent, "check", env={"AGENT_DB_DSN": pg_dsn(pg_server, user), "AGENT_DB_PASSWORD": "wrong-password"}
    )
    assert proc.returncode == 1
    assert "ecs-health-agent check: 1 failed\n" in proc.stdout
    assert "FAIL  db [default]" in proc.stdout and "auth (pg:28P01" in proc.stdout
    assert "next: " in proc.stdout
