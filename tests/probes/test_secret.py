"""SecretProbe against moto (auth enforced) and an error stub, always through run_probe."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import pytest

from agent.aws.clients import AwsClients, attempt_budget
from agent.config.models import TargetConfig
from agent.probes.base import TargetState
from agent.probes.runner import run_probe
from agent.probes.secret import SecretProbe, parse_secret
from agent.sandbox.aws import CredentialsEndpoint, Keys
from agent.shared.reasons import ProbeFailure, Reason
from tests.support.aws import (
    ACCOUNT,
    PROBE_TIMEOUT,
    REGION,
    AwsEnv,
    AwsErrorStub,
    Moto,
    assert_clean,
    aws_calls,
    make_target,
)
from tests.support.ports import refused_port

Stub = Callable[..., Awaitable[AwsErrorStub]]
RDS_SECRET = {
    "username": "orders_app",
    "password": "s3cr3t-Pa55word!",
    "engine": "postgres",
    "host": "orders.c9akciq32.eu-west-1.rds.amazonaws.com",
    "port": 5432,
    "dbname": "orders",
}
PASSWORD = str(RDS_SECRET["password"])


def secret_target(secret_id: str, **overrides: object) -> TargetConfig:
    return make_target(secret_id=secret_id, **overrides)


def probe(target: TargetConfig, aws: AwsClients, refresh: float | None = None) -> tuple[SecretProbe, TargetState]:
    state = TargetState()
    return SecretProbe(target, state, aws, refresh_seconds=refresh), state


@pytest.fixture
async def task_role(moto_env: AwsEnv, credentials_endpoint: CredentialsEndpoint) -> CredentialsEndpoint:
    """The task runs with the task role, which may read every secret."""
    moto_env.container(credentials_endpoint.url)
    return credentials_endpoint


async def test_rds_json_secret_fills_the_state_without_leaking(
    task_role: CredentialsEndpoint, aws: AwsClients, moto: Moto
) -> None:
    name, _ = await moto.secret(RDS_SECRET)
    p, state = probe(secret_target(name), aws)
    result = await run_probe(p, PROBE_TIMEOUT)
    assert result.ok, result.message
    assert state.secret_user == "orders_app"
    assert state.secret_password is not None and state.secret_password.get_secret_value() == PASSWORD
    assert state.secret_fetched_at is not None
    assert result.details["arn"].startswith(f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:")
    assert result.details["region"] == REGION
    assert result.details["user"] == "orders_app" and result.details["format"] == "json"
    assert result.details["fields"] == "dbname,engine,host,password,port,username"
    assert result.details["cached"] == "false"
    assert PASSWORD not in repr(state)
    assert_clean(result, PASSWORD, json.dumps(RDS_SECRET))


async def test_cached_secret_is_not_fetched_again_until_cleared(
    task_role: CredentialsEndpoint, aws: AwsClients, moto: Moto
) -> None:
    name, _ = await moto.secret(RDS_SECRET)
    p, state = probe(secret_target(name), aws, refresh=300)
    before = aws_calls("secretsmanager", "GetSecretValue")
    first, second = await run_probe(p, PROBE_TIMEOUT), await run_probe(p, PROBE_TIMEOUT)
    assert (first.details["cached"], second.details["cached"]) == ("false", "true")
    assert second.details["age_seconds"] == "0" and second.details["arn"] == first.details["arn"]
    assert aws_calls("secretsmanager", "GetSecretValue") == before + 1

    state.clear_secret()  # what the database probe does after a rejected login (a rotation)
    third = await run_probe(p, PROBE_TIMEOUT)
    assert third.ok and third.details["cached"] == "false"
    assert aws_calls("secretsmanager", "GetSecretValue") == before + 2


async def test_without_refresh_every_run_fetches(task_role: CredentialsEndpoint, aws: AwsClients, moto: Moto) -> None:
    name, _ = await moto.secret(RDS_SECRET)
    p, _ = probe(secret_target(name), aws)
    before = aws_calls("secretsmanager", "GetSecretValue")
    assert (await run_probe(p, PROBE_TIMEOUT)).ok and (await run_probe(p, PROBE_TIMEOUT)).ok
    assert aws_calls("secretsmanager", "GetSecretValue") == before + 2


async def test_plain_string_secret_is_the_password(task_role: CredentialsEndpoint, aws: AwsClients, moto: Moto) -> None:
    name, _ = await moto.secret("plain-Password-42")
    p, state = probe(secret_target(name), aws)
    result = await run_probe(p, PROBE_TIMEOUT)
    assert result.ok and result.details["format"] == "plain"
    assert state.secret_user is None
    assert state.secret_password is not None and state.secret_password.get_secret_value() == "plain-Password-42"
    assert_clean(result, "plain-Password-42")


async def test_secret_arn_decides_the_region(task_role: CredentialsEndpoint, aws: AwsClients, moto: Moto) -> None:
    _, arn = await moto.secret(RDS_SECRET, region="ap-southeast-2")
    p, _ = probe(secret_target(arn), aws)  # the target's own region is eu-west-1
    result = await run_probe(p, PROBE_TIMEOUT)
    assert result.ok, result.message
    assert result.details["region"] == "ap-southeast-2"


async def test_missing_secret_is_config(task_role: CredentialsEndpoint, aws: AwsClients) -> None:
    p, _ = probe(secret_target("no-such-secret"), aws)
    result = await run_probe(p, PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.CONFIG, "secretsmanager:ResourceNotFoundException")
    assert f"describe-secret --secret-id no-such-secret --region {REGION}" in result.hint


async def test_secret_scheduled_for_deletion_is_config(
    task_role: CredentialsEndpoint, aws: AwsClients, moto: Moto
) -> None:
    from agent.sandbox.aws import schedule_secret_deletion

    name, _ = await moto.secret(RDS_SECRET)
    await schedule_secret_deletion(moto.url, moto.identities.admin, name, REGION)
    p, _ = probe(secret_target(name), aws)
    result = await run_probe(p, PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.CONFIG, "secretsmanager:InvalidRequestException")
    assert "restore-secret" in result.hint


async def test_secret_without_password_is_config(task_role: CredentialsEndpoint, aws: AwsClients, moto: Moto) -> None:
    name, _ = await moto.secret({"username": "orders_app", "host": "db"})
    p, _ = probe(secret_target(name), aws)
    result = await run_probe(p, PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.CONFIG, "secret:no_password")


async def test_secret_without_username_and_no_dsn_user_is_config(
    task_role: CredentialsEndpoint, aws: AwsClients, moto: Moto
) -> None:
    name, _ = await moto.secret({"password": PASSWORD})
    p, state = probe(secret_target(name, user=None), aws)
    result = await run_probe(p, PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.CONFIG, "secret:no_username")
    assert state.secret_password is None
    assert_clean(result, PASSWORD)


async def test_malformed_json_is_config_and_never_echoed(
    task_role: CredentialsEndpoint, aws: AwsClients, moto: Moto
) -> None:
    broken = '{"username": "orders_app", "password": "Broken-Pa55word" '
    name, _ = await moto.secret(broken)
    p, _ = probe(secret_target(name), aws)
    result = await run_probe(p, PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.CONFIG, "secret:malformed_json")
    assert_clean(result, "Broken-Pa55word", broken)


async def test_access_denied_is_auth_and_names_the_permission(moto_env: AwsEnv, aws: AwsClients, moto: Moto) -> None:
    name, _ = await moto.secret(RDS_SECRET)
    endpoint = CredentialsEndpoint(await moto.task_role_keys(denied=True))
    moto_env.container(await endpoint.start())
    try:
        p, _ = probe(secret_target(name), aws)
        result = await run_probe(p, PROBE_TIMEOUT)
    finally:
        await endpoint.stop()
    assert (result.reason, result.code) == (Reason.AUTH, "secretsmanager:AccessDenied")
    assert "secretsmanager:GetSecretValue" in result.hint
    assert f"--secret-id {name} --region {REGION} --query ARN" in result.hint


async def test_secret_arns_survive_redaction(task_role: CredentialsEndpoint, aws: AwsClients, moto: Moto) -> None:
    name, arn = await moto.secret(RDS_SECRET)
    p, _ = probe(secret_target(name), aws)
    result = await run_probe(p, PROBE_TIMEOUT)
    assert result.details["arn"] == arn


async def test_kms_decryption_failure_is_auth_and_names_kms_decrypt(
    aws_env: AwsEnv, aws: AwsClients, aws_stub: Stub
) -> None:
    stub = await aws_stub("DecryptionFailure", message="the KMS key is not accessible")
    aws_env.endpoint(stub.url)
    aws_env.keys(Keys("AKIADECRYPTFAIL00000", "decrypt-secret-0000000000000000"))
    p, _ = probe(secret_target("orders/db"), aws)
    result = await run_probe(p, PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.AUTH, "secretsmanager:DecryptionFailure")
    assert "kms:Decrypt" in result.hint


async def test_throttled_get_secret_value_is_throttled_with_bounded_attempts(
    aws_env: AwsEnv, aws: AwsClients, aws_stub: Stub
) -> None:
    stub = await aws_stub("ThrottlingException", message="Rate exceeded")
    aws_env.endpoint(stub.url)
    aws_env.keys(Keys("AKIATHROTTLED0000000", "throttled-secret-000000000000"))
    p, _ = probe(secret_target("orders/db"), aws)
    result = await run_probe(p, PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.THROTTLED, "aws:throttled:ThrottlingException")
    assert stub.requests == ["GetSecretValue"] * attempt_budget(PROBE_TIMEOUT)[0]
    assert "AGENT_SECRET_REFRESH_SECONDS" in result.hint


async def test_internal_service_error_is_server(aws_env: AwsEnv, aws: AwsClients, aws_stub: Stub) -> None:
    stub = await aws_stub("InternalServiceError", status=500)
    aws_env.endpoint(stub.url)
    aws_env.keys(Keys("AKIASERVERERROR00000", "server-error-secret-0000000000"))
    p, _ = probe(secret_target("orders/db"), aws)
    result = await run_probe(p, PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.SERVER, "secretsmanager:InternalServiceError")


async def test_unreachable_secrets_manager_is_network_and_names_the_endpoint_called(
    aws_env: AwsEnv, aws: AwsClients
) -> None:
    host = f"127.0.0.1:{refused_port()}"
    aws_env.endpoint(f"http://{host}")
    aws_env.keys(Keys("AKIAUNREACHABLE00000", "unreachable-secret-00000000000"))
    p, _ = probe(secret_target("orders/db"), aws)
    result = await run_probe(p, PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.NETWORK, "secretsmanager:refused")
    assert result.hint.startswith(f"cannot reach Secrets Manager at {host}: allow outbound HTTPS (443) to {host}")


async def test_no_credentials_is_config(aws_env: AwsEnv, aws: AwsClients) -> None:
    p, _ = probe(secret_target("orders/db"), aws)
    result = await run_probe(p, PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.CONFIG, "aws:no_credentials")
    assert "taskRoleArn" in result.hint


def test_parse_secret_accepts_a_string_port_and_no_optional_keys() -> None:
    parsed = parse_secret('{"username": "u", "password": "pw-12345", "port": "3306"}', "s")
    assert (parsed.user, parsed.port, parsed.host) == ("u", "3306", None)
    assert "pw-12345" not in repr(parsed)


def test_parse_secret_rejects_an_empty_plain_secret() -> None:
    with pytest.raises(ProbeFailure) as caught:
        parse_secret("", "s")
    assert caught.value.failure.code == "secret:no_password"


def test_parse_secret_accepts_an_unquoted_numeric_password() -> None:
    assert parse_secret('{"username": "u", "password": 12345678}', "s").password.get_secret_value() == "12345678"


@pytest.mark.parametrize("body", ['{"password": ""}', '{"password": null}', '{"password": true}', "{}"])
def test_parse_secret_rejects_json_without_a_usable_password(body: str) -> None:
    with pytest.raises(ProbeFailure) as caught:
        parse_secret(body, "s")
    assert caught.value.failure.code == "secret:no_password"
