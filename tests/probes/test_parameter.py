"""ParameterProbe against moto's SSM (auth enforced, SecureString) and an error stub, always through run_probe."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web

from agent.aws.clients import AwsClients, attempt_budget
from agent.config.models import TargetConfig
from agent.probes.base import TargetState
from agent.probes.parameter import ParameterProbe
from agent.probes.runner import run_probe
from agent.sandbox.aws import CredentialsEndpoint, Keys
from agent.shared.reasons import Reason, Scope
from tests.support.aws import (
    ACCOUNT,
    PROBE_TIMEOUT,
    REGION,
    AwsEnv,
    AwsErrorStub,
    LoopbackHttp,
    Moto,
    assert_clean,
    aws_calls,
    make_target,
)
from tests.support.ports import refused_port
from tests.support.secrets import remember

Stub = Callable[..., Awaitable[AwsErrorStub]]
PASSWORD = remember("ssm-Pa55word-0f-the-db!")
KMS_DENIED = (
    "User: arn:aws:sts::123456789012:assumed-role/agent-task-role/t is not authorized to perform: kms:Decrypt on"
    " resource: arn:aws:kms:eu-west-1:123456789012:key/1234 because no identity-based policy allows the kms:Decrypt"
    " action (Service: AWSKMS; Status Code: 400; Error Code: AccessDeniedException)"
)


def parameter_target(parameter: str, **overrides: object) -> TargetConfig:
    return make_target(password_parameter=parameter, **overrides)


def probe(target: TargetConfig, aws: AwsClients, refresh: float | None = None) -> tuple[ParameterProbe, TargetState]:
    state = TargetState()
    return ParameterProbe(target, state, aws, refresh_seconds=refresh), state


@pytest.fixture
async def task_role(moto_env: AwsEnv, credentials_endpoint: CredentialsEndpoint) -> CredentialsEndpoint:
    """The task runs with the task role, which may read every parameter."""
    moto_env.container(credentials_endpoint.url)
    return credentials_endpoint


async def stubbed(aws_env: AwsEnv, aws_stub: Stub, code: str, status: int = 400, message: str = "stubbed") -> None:
    stub = await aws_stub(code, status=status, message=message)
    aws_env.endpoint(stub.url)
    aws_env.keys(Keys("AKIAPARAMETERSTUB000", "parameter-stub-secret-000000000"))


async def test_secure_string_fills_the_state_counted_and_without_leaking(
    task_role: CredentialsEndpoint, aws: AwsClients, moto: Moto
) -> None:
    name, arn = await moto.parameter(PASSWORD)
    p, state = probe(parameter_target(name), aws)
    before = aws_calls("ssm", "GetParameter")
    result = await run_probe(p, PROBE_TIMEOUT)
    assert result.ok, result.message
    assert state.secret_password is not None and state.secret_password.get_secret_value() == PASSWORD
    assert state.secret_user is None and state.secret_fetched_at is not None
    assert (result.details["arn"], result.details["region"], result.details["type"]) == (arn, REGION, "SecureString")
    assert arn.startswith(f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/eha/")
    assert (result.details["version"], result.details["cached"], result.message) == ("1", "false", "")
    assert aws_calls("ssm", "GetParameter") == before + 1
    assert PASSWORD not in repr(state)
    assert_clean(result, PASSWORD)


async def test_cached_parameter_is_not_read_again_until_cleared(
    task_role: CredentialsEndpoint, aws: AwsClients, moto: Moto
) -> None:
    name, _ = await moto.parameter(PASSWORD)
    p, state = probe(parameter_target(name), aws, refresh=300)
    before = aws_calls("ssm", "GetParameter")
    first, second = await run_probe(p, PROBE_TIMEOUT), await run_probe(p, PROBE_TIMEOUT)
    assert (first.details["cached"], second.details["cached"]) == ("false", "true")
    assert aws_calls("ssm", "GetParameter") == before + 1
    state.clear_secret()  # what the database probe does after a rejected login
    assert (await run_probe(p, PROBE_TIMEOUT)).details["cached"] == "false"
    assert aws_calls("ssm", "GetParameter") == before + 2


async def test_arn_decides_the_region_and_a_version_selector_is_read(
    task_role: CredentialsEndpoint, aws: AwsClients, moto: Moto
) -> None:
    _, arn = await moto.parameter(PASSWORD, region="ap-southeast-2")
    p, state = probe(parameter_target(f"{arn}:1"), aws)  # the target's own region is eu-west-1
    result = await run_probe(p, PROBE_TIMEOUT)
    assert result.ok, result.message
    assert result.details["region"] == "ap-southeast-2" and result.details["version"] == "1"
    assert state.secret_password is not None and state.secret_password.get_secret_value() == PASSWORD


async def test_a_plain_string_parameter_passes_with_a_note(
    task_role: CredentialsEndpoint, aws: AwsClients, moto: Moto
) -> None:
    value = remember("plain-String-Pa55word")
    name, _ = await moto.parameter(value, kind="String")
    result = await run_probe(probe(parameter_target(name), aws)[0], PROBE_TIMEOUT)
    assert result.ok and result.details["type"] == "String"
    assert "not a SecureString: its value is stored unencrypted" in result.message
    assert_clean(result, value)


async def test_missing_parameter_is_config_naming_the_name_and_region(
    task_role: CredentialsEndpoint, aws: AwsClients
) -> None:
    p, _ = probe(parameter_target("/eha/no/such/parameter"), aws)
    result = await run_probe(p, PROBE_TIMEOUT)
    assert (result.reason, result.code, result.scope) == (Reason.CONFIG, "parameter:ParameterNotFound", Scope.TASK)
    assert f"get-parameter --name /eha/no/such/parameter --region {REGION}" in result.hint
    assert "labelled" not in result.hint  # no :LABEL asked for


async def test_an_unknown_label_is_parameter_not_found_saying_so(
    task_role: CredentialsEndpoint, aws: AwsClients, moto: Moto
) -> None:
    name, _ = await moto.parameter(PASSWORD)
    result = await run_probe(probe(parameter_target(f"{name}:prod"), aws)[0], PROBE_TIMEOUT)
    assert result.code == "parameter:ParameterNotFound"
    assert f"there is no parameter {name}:prod in {REGION} (or it has no version labelled prod)" in result.hint


async def test_missing_version_is_config_naming_the_history_command(
    task_role: CredentialsEndpoint, aws: AwsClients, moto: Moto
) -> None:
    name, _ = await moto.parameter(PASSWORD)
    result = await run_probe(probe(parameter_target(f"{name}:7"), aws)[0], PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.CONFIG, "parameter:ParameterVersionNotFound")
    assert f"has no version 7: `aws ssm get-parameter-history --name {name} --region {REGION}" in result.hint


async def test_access_denied_is_auth_naming_the_action_the_arn_and_the_task_role(
    moto_env: AwsEnv, aws: AwsClients, moto: Moto
) -> None:
    name, arn = await moto.parameter(PASSWORD)
    endpoint = CredentialsEndpoint(await moto.task_role_keys(denied=True))
    moto_env.container(await endpoint.start())
    try:
        result = await run_probe(probe(parameter_target(name), aws)[0], PROBE_TIMEOUT)
    finally:
        await endpoint.stop()
    assert (result.reason, result.code) == (Reason.AUTH, "parameter:AccessDenied")
    assert "allow `ssm:GetParameter` on " in result.hint and "task role (taskRoleArn)" in result.hint
    assert f"parameter/{name.lstrip('/')}" in result.hint and arn.split(":")[3] == REGION


async def test_kms_refusal_inside_the_ssm_answer_names_kms_decrypt(
    aws_env: AwsEnv, aws: AwsClients, aws_stub: Stub
) -> None:
    """SSM answers AccessDeniedException for KMS too; the message tells them apart (as DecryptionFailure does)."""
    await stubbed(aws_env, aws_stub, "AccessDeniedException", message=KMS_DENIED)
    result = await run_probe(probe(parameter_target("/app/db/password"), aws)[0], PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.AUTH, "parameter:kms_access_denied")
    assert result.message.startswith("GetParameter failed: AccessDeniedException: User: ")  # AWS's own code
    assert "allow `kms:Decrypt`" in result.hint and "kms:ViaService = ssm.eu-west-1.amazonaws.com" in result.hint
    assert "describe-parameters --parameter-filters Key=Name,Values=/app/db/password" in result.hint


async def test_an_ssm_access_denied_without_kms_is_the_ssm_permission(
    aws_env: AwsEnv, aws: AwsClients, aws_stub: Stub
) -> None:
    message = "User: arn:aws:sts::123456789012:assumed-role/r/t is not authorized to perform: ssm:GetParameter"
    await stubbed(aws_env, aws_stub, "AccessDeniedException", message=message)
    result = await run_probe(probe(parameter_target("/app/db/password"), aws)[0], PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.AUTH, "parameter:AccessDeniedException")
    assert "allow `ssm:GetParameter` on arn:aws:ssm:eu-west-1:<account>:parameter/app/db/password" in result.hint


async def test_invalid_key_id_is_auth_naming_the_key_state(aws_env: AwsEnv, aws: AwsClients, aws_stub: Stub) -> None:
    await stubbed(aws_env, aws_stub, "InvalidKeyId", message="The query key ID isn't valid.")
    result = await run_probe(probe(parameter_target("/app/db/password"), aws)[0], PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.AUTH, "parameter:InvalidKeyId")
    assert "aws kms describe-key" in result.hint and "`kms:Decrypt`" in result.hint


async def test_throttled_get_parameter_is_throttled_with_bounded_attempts(
    aws_env: AwsEnv, aws: AwsClients, aws_stub: Stub
) -> None:
    stub = await aws_stub("ThrottlingException", message="Rate exceeded")
    aws_env.endpoint(stub.url)
    aws_env.keys(Keys("AKIATHROTTLEDSSM0000", "throttled-ssm-secret-000000000"))
    result = await run_probe(probe(parameter_target("/app/db/password"), aws)[0], PROBE_TIMEOUT)
    assert (result.reason, result.code, result.scope) == (
        Reason.THROTTLED,
        "aws:throttled:ThrottlingException",
        Scope.SHARED,
    )
    assert stub.requests == ["GetParameter"] * attempt_budget(PROBE_TIMEOUT)[0]
    assert "Parameter Store is throttling GetParameter in eu-west-1" in result.hint
    assert "/app/db/password every AGENT_SECRET_REFRESH_SECONDS" in result.hint


async def test_internal_server_error_is_server(aws_env: AwsEnv, aws: AwsClients, aws_stub: Stub) -> None:
    await stubbed(aws_env, aws_stub, "InternalServerError", status=500)
    result = await run_probe(probe(parameter_target("/app/db/password"), aws)[0], PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.SERVER, "parameter:InternalServerError")
    assert "usually transient" in result.hint


async def test_unreachable_ssm_is_network_naming_the_vpc_endpoint(aws_env: AwsEnv, aws: AwsClients) -> None:
    host = f"127.0.0.1:{refused_port()}"
    aws_env.endpoint(f"http://{host}")
    aws_env.keys(Keys("AKIAUNREACHABLESSM00", "unreachable-ssm-secret-0000000"))
    result = await run_probe(probe(parameter_target("/app/db/password"), aws)[0], PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.NETWORK, "ssm:refused")
    assert result.hint.startswith(f"cannot reach SSM at {host}") and "com.amazonaws.eu-west-1.ssm" in result.hint


async def test_no_region_is_config(aws_env: AwsEnv, aws: AwsClients) -> None:
    p, _ = probe(parameter_target("/app/db/password", region=None), aws)
    result = await run_probe(p, PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.CONFIG, "parameter:no_region")


def test_a_target_without_a_parameter_is_a_programming_error(aws: AwsClients) -> None:
    with pytest.raises(ValueError, match="has no password_parameter"):
        ParameterProbe(make_target(), TargetState(), aws)


class _NoValue(LoopbackHttp):
    """A 200 to GetParameter without the parameter's value: a proxy or stand-in, not SSM."""

    async def _handle(self, request: web.Request) -> web.Response:
        body = json.dumps({"Parameter": {"Name": "/app/db/password", "Type": "SecureString"}})
        return web.Response(text=body, content_type="application/x-amz-json-1.1")


async def test_an_answer_without_a_value_is_server_bad_response(aws_env: AwsEnv, aws: AwsClients) -> None:
    stand_in = _NoValue()
    aws_env.endpoint(await stand_in.start())
    aws_env.keys(Keys("AKIANOVALUESTANDIN00", "no-value-secret-00000000000000"))
    try:
        p, state = probe(parameter_target("/app/db/password"), aws)
        result = await run_probe(p, PROBE_TIMEOUT)
    finally:
        await stand_in.stop()
    assert (result.reason, result.code) == (Reason.SERVER, "ssm:bad_response")
    assert state.secret_password is None
