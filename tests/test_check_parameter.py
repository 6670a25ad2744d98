"""`ecs-health-agent check` with AGENT_DB_PASSWORD_PARAMETER, end to end: a real process, moto's SSM (SecureString,
auth enforced), an error stub for what moto cannot answer, and a throwaway PostgreSQL that checks passwords."""

from __future__ import annotations

import asyncio
import re

from agent.sandbox.aws import CredentialsEndpoint
from tests.probes.test_parameter import KMS_DENIED
from tests.support.agent_process import run_agent
from tests.support.aws import REGION, AwsEnv, AwsErrorStub, Moto
from tests.support.databases import PgAdmin, Server, random_password
from tests.support.secrets import remember

TIMEOUT = {"AGENT_TIMEOUT_SECONDS": "2"}
_TIMING = re.compile(r"(, )?\d+ ms\)")


async def checklist(env: dict[str, str]) -> tuple[int, list[str]]:
    """Run `check` (the checklist a person reads) off the event loop; its lines with timings blanked."""
    proc = await asyncio.to_thread(run_agent, "check", env={**TIMEOUT, **env})
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, [_TIMING.sub(r"\1N ms)", line) for line in proc.stdout.splitlines()]


def line_of(lines: list[str], start: str) -> str:
    (found,) = [line for line in lines if line.startswith(start)]
    return found


def dsn(server: Server, user: str) -> str:
    return f"postgresql://{user}@{server.host}:{server.port}/{server.admin_database}"


async def test_the_parameter_logs_in_to_postgresql(
    moto_env: AwsEnv, moto: Moto, credentials_endpoint: CredentialsEndpoint, pg_server: Server, pg_admin: PgAdmin
) -> None:
    moto_env.container(credentials_endpoint.url)
    password = remember(random_password())
    user = await pg_admin.role(password)
    name, arn = await moto.parameter(password)
    env = {"AGENT_DB_DSN": dsn(pg_server, user), "AGENT_DB_PASSWORD_PARAMETER": name, "AWS_REGION": REGION}
    code, lines = await checklist(env)
    assert code == 0, "\n".join(lines)
    assert lines[0] == "ecs-health-agent check: all 3 checks passed"
    assert line_of(lines, "  PASS  parameter [default]").endswith("(GetParameter, decrypted) (N ms)")
    assert f"arn={arn}, region={REGION}, type=SecureString, version=1" in "\n".join(lines)
    assert f"login=parameter, user={user}" in "\n".join(lines)
    assert password[:6] not in "\n".join(lines)


async def test_drift_names_the_parameter_whose_value_logs_in(
    moto_env: AwsEnv, moto: Moto, credentials_endpoint: CredentialsEndpoint, pg_server: Server, pg_admin: PgAdmin
) -> None:
    """A static AGENT_DB_PASSWORD the database rejects while the parameter's value logs in: db:password_drift."""
    moto_env.container(credentials_endpoint.url)
    right, stale = remember(random_password()), remember(random_password())
    user = await pg_admin.role(right)
    name, _ = await moto.parameter(right)
    env = {
        "AGENT_DB_DSN": dsn(pg_server, user),
        "AGENT_DB_PASSWORD": stale,
        "AGENT_DB_PASSWORD_PARAMETER": name,
        "AWS_REGION": REGION,
    }
    code, lines = await checklist(env)
    text = "\n".join(lines)
    assert code == 1
    fail = line_of(lines, "  FAIL  db [default]")
    assert fail.endswith("auth (db:password_drift, N ms)")
    assert f"the current value of parameter {name} logs in: AGENT_DB_PASSWORD differs from the parameter" in text
    assert f"read the password from parameter {name} (ECS `secrets` with valueFrom)" in text
    assert f"or set that to the current value of parameter {name}" in text
    assert right[:6] not in text and stale[:6] not in text
    assert await pg_admin.settle(user, 0) == []  # the parameter's login was closed again


async def test_a_missing_parameter_fails_check_and_the_login_does_not_run(
    moto_env: AwsEnv, credentials_endpoint: CredentialsEndpoint
) -> None:
    moto_env.container(credentials_endpoint.url)
    env = {"AGENT_DB_DSN": "postgresql://app@127.0.0.1:5432/x", "AGENT_DB_PASSWORD_PARAMETER": "/eha/missing"}
    code, lines = await checklist({**env, "AWS_REGION": REGION})
    fail = line_of(lines, "  FAIL  parameter [default]")
    assert code == 1 and fail.endswith("config (parameter:ParameterNotFound, N ms)")
    assert line_of(lines, "  SKIP  db [default]")


async def test_a_denied_task_role_fails_check_naming_ssm_get_parameter(
    moto_env: AwsEnv, moto: Moto, pg_server: Server
) -> None:
    name, _ = await moto.parameter(remember(random_password()))
    endpoint = CredentialsEndpoint(await moto.task_role_keys(denied=True))
    moto_env.container(await endpoint.start())
    try:
        env = {"AGENT_DB_DSN": dsn(pg_server, "app"), "AGENT_DB_PASSWORD_PARAMETER": name, "AWS_REGION": REGION}
        code, lines = await checklist(env)
    finally:
        await endpoint.stop()
    fail = line_of(lines, "  FAIL  parameter [default]")
    assert code == 1 and fail.endswith("auth (parameter:AccessDenied, N ms)")
    assert "allow `ssm:GetParameter`" in "\n".join(lines)


async def stubbed_ssm(moto_env: AwsEnv, stub: AwsErrorStub, credentials: CredentialsEndpoint) -> None:
    """STS answers from moto (the credentials pass); SSM's calls go to the stub."""
    moto_env.container(credentials.url)
    moto_env.service_endpoint("SSM", await stub.start())


async def test_what_moto_cannot_answer_fails_check_with_its_own_code(
    moto_env: AwsEnv, credentials_endpoint: CredentialsEndpoint
) -> None:
    """KMS refusal, a disabled key, throttling, a missing version and a 500: one line each."""
    cases = [
        (AwsErrorStub("AccessDeniedException", message=KMS_DENIED), "auth (parameter:kms_access_denied"),
        (AwsErrorStub("InvalidKeyId", message="The query key ID isn't valid."), "auth (parameter:InvalidKeyId"),
        (AwsErrorStub("ThrottlingException", message="Rate exceeded"), "throttled (aws:throttled:ThrottlingException"),
        (AwsErrorStub("ParameterVersionNotFound"), "config (parameter:ParameterVersionNotFound"),
        (AwsErrorStub("InternalServerError", status=500), "server (parameter:InternalServerError"),
    ]
    env = {"AGENT_DB_DSN": "postgresql://app@127.0.0.1:5432/x", "AGENT_DB_PASSWORD_PARAMETER": "/app/db/password:2"}
    for stub, expected in cases:
        await stubbed_ssm(moto_env, stub, credentials_endpoint)
        try:
            code, lines = await checklist({**env, "AWS_REGION": REGION})
        finally:
            await stub.stop()
        fail = line_of(lines, "  FAIL  parameter [default]")
        assert code == 1 and fail.endswith(f"{expected}, N ms)"), fail
        assert line_of(lines, "  PASS  credentials [aws]")
