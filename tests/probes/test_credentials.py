"""CredentialsProbe against real stand-ins: moto (auth enforced), an ECS credentials endpoint, a stub, sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from agent.aws.clients import MAX_ATTEMPTS, AwsClients, attempt_budget
from agent.probes.credentials import CredentialsProbe
from agent.probes.runner import run_probe
from agent.sandbox.aws import CredentialsEndpoint, EndpointMode, Keys
from agent.shared.reasons import Failure, Reason
from tests.support.aws import ACCOUNT, PROBE_TIMEOUT, REGION, AwsEnv, AwsErrorStub, Moto, assert_clean, aws_calls
from tests.support.ports import SilentListener, refused_port

Stub = Callable[..., Awaitable[AwsErrorStub]]


def probe(aws: AwsClients, verify_every: float | None = None) -> CredentialsProbe:
    return CredentialsProbe(aws, REGION, verify_every_seconds=verify_every)


async def test_no_credentials_at_all_is_a_task_definition_problem(aws_env: AwsEnv, aws: AwsClients) -> None:
    result = await run_probe(probe(aws), PROBE_TIMEOUT)
    assert (result.ok, result.reason, result.code) == (False, Reason.CONFIG, "aws:no_credentials")
    assert "taskRoleArn" in result.message and "taskRoleArn" in result.hint


async def test_container_role_success_reports_provider_expiry_and_identity(
    moto_env: AwsEnv, aws: AwsClients, credentials_endpoint: CredentialsEndpoint
) -> None:
    moto_env.container(credentials_endpoint.url)
    p = probe(aws)
    result = await run_probe(p, PROBE_TIMEOUT)
    assert result.ok, result.message
    assert result.details["provider"] == "container-role"
    assert result.details["account"] == ACCOUNT
    assert ":assumed-role/agent-task-role/" in result.details["arn"]
    expires = datetime.fromisoformat(result.details["expires_at"])
    assert timedelta(minutes=50) < expires - datetime.now(UTC) < timedelta(minutes=61)
    assert p.identity is not None and p.identity.arn == result.details["arn"]
    assert p.expires_at == expires
    keys = credentials_endpoint.credentials
    assert keys is not None
    assert_clean(result, keys.secret_key, keys.token)


async def test_env_keys_report_the_env_provider_without_expiry(moto_env: AwsEnv, aws: AwsClients, moto: Moto) -> None:
    moto_env.keys(moto.identities.user)
    result = await run_probe(probe(aws), PROBE_TIMEOUT)
    assert result.ok, result.message
    assert result.details["provider"] == "env"
    assert "expires_at" not in result.details
    assert result.details["arn"].endswith(":user/agent-user")
    assert_clean(result, moto.identities.user.secret_key)


async def test_container_endpoint_refused_is_network_and_names_the_endpoint(moto_env: AwsEnv, aws: AwsClients) -> None:
    url = f"http://127.0.0.1:{refused_port()}/v2/credentials/x"
    moto_env.container(url)
    result = await run_probe(probe(aws), PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.NETWORK, "credentials:refused")
    assert url in result.hint and "AWS_CONTAINER_CREDENTIALS_FULL_URI" in result.hint


async def test_container_endpoint_500_is_server(
    moto_env: AwsEnv, aws: AwsClients, credentials_endpoint: CredentialsEndpoint
) -> None:
    moto_env.container(credentials_endpoint.url)
    await credentials_endpoint.set_mode(EndpointMode.SERVER_ERROR)
    result = await run_probe(probe(aws), PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.SERVER, "credentials:http_500")


async def test_container_endpoint_403_is_auth(
    moto_env: AwsEnv, aws: AwsClients, credentials_endpoint: CredentialsEndpoint
) -> None:
    moto_env.container(credentials_endpoint.url)
    await credentials_endpoint.set_mode(EndpointMode.FORBIDDEN)
    result = await run_probe(probe(aws), PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.AUTH, "credentials:http_403")


async def test_wrong_authorization_token_from_the_token_file_is_auth(
    moto_env: AwsEnv, aws: AwsClients, credentials_endpoint: CredentialsEndpoint
) -> None:
    credentials_endpoint.token = "expected-token"
    token_file = moto_env.tmp_path / "token"
    await asyncio.to_thread(token_file.write_text, "some-other-token")  # off the loop the agent runs on
    moto_env.container(credentials_endpoint.url, token_file=token_file)
    result = await run_probe(probe(aws), PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.AUTH, "credentials:http_403")
    assert str(token_file) in result.hint
    await asyncio.to_thread(token_file.write_text, "expected-token")  # the file is re-read on every fetch
    assert (await run_probe(probe(aws), PROBE_TIMEOUT)).ok


async def test_missing_token_file_is_config(
    moto_env: AwsEnv, aws: AwsClients, credentials_endpoint: CredentialsEndpoint
) -> None:
    moto_env.container(credentials_endpoint.url, token_file=moto_env.tmp_path / "no-such-token")
    result = await run_probe(probe(aws), PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.CONFIG, "credentials:token_file_missing")


async def test_full_uri_to_a_host_botocore_refuses_is_config(moto_env: AwsEnv, aws: AwsClients) -> None:
    """botocore refuses plain-http FULL_URIs outside loopback before connecting anywhere."""
    moto_env.container("http://credentials.example.com/creds")
    result = await run_probe(probe(aws), PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.CONFIG, "credentials:bad_full_uri")


async def test_hanging_endpoint_is_timeout_within_the_probe_timeout(
    moto_env: AwsEnv, aws: AwsClients, credentials_endpoint: CredentialsEndpoint
) -> None:
    moto_env.container(credentials_endpoint.url)
    await credentials_endpoint.set_mode(EndpointMode.HANG)
    result = await run_probe(probe(aws), PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.TIMEOUT, "credentials:read_timeout")
    assert result.duration_ms < PROBE_TIMEOUT * 1000
    assert credentials_endpoint.requests == 2  # one retry, not botocore's three attempts


async def test_expired_credentials_from_the_endpoint_are_auth(
    moto_env: AwsEnv, aws: AwsClients, credentials_endpoint: CredentialsEndpoint
) -> None:
    moto_env.container(credentials_endpoint.url)
    await credentials_endpoint.set_mode(EndpointMode.EXPIRED)
    result = await run_probe(probe(aws), PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.AUTH, "credentials:expired")


async def test_sts_rejects_an_unknown_access_key(moto_env: AwsEnv, aws: AwsClients) -> None:
    moto_env.keys(Keys("AKIAUNKNOWNKEY000000", "unknown-secret-key-value-0000000000000000"))
    result = await run_probe(probe(aws), PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.AUTH, "sts:InvalidClientTokenId")
    assert "aws sts get-caller-identity" in result.hint
    assert_clean(result, "unknown-secret-key-value-0000000000000000")


async def test_sts_rejects_a_wrong_secret_key(moto_env: AwsEnv, aws: AwsClients, moto: Moto) -> None:
    moto_env.keys(Keys(moto.identities.user.access_key, "wrong-secret-key-value-00000000000000000"))
    result = await run_probe(probe(aws), PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.AUTH, "sts:SignatureDoesNotMatch")
    assert_clean(result, "wrong-secret-key-value-00000000000000000")


async def test_expired_session_token_is_auth(aws_env: AwsEnv, aws: AwsClients, aws_stub: Stub) -> None:
    stub = await aws_stub("ExpiredToken", message="The security token included in the request is expired")
    aws_env.endpoint(stub.url)
    aws_env.keys(Keys("ASIAEXPIREDKEY000000", "expired-secret-0000000000000", "expired-session-token-0000"))
    result = await run_probe(probe(aws), PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.AUTH, "sts:ExpiredToken")
    assert "AWS_SESSION_TOKEN" in result.hint
    assert_clean(result, "expired-secret-0000000000000", "expired-session-token-0000")


async def test_throttling_is_throttled_and_the_attempts_are_bounded(
    aws_env: AwsEnv, aws: AwsClients, aws_stub: Stub
) -> None:
    stub = await aws_stub("Throttling", message="Rate exceeded")
    aws_env.endpoint(stub.url)
    aws_env.keys(Keys("AKIATHROTTLED0000000", "throttled-secret-000000000000"))
    before = aws_calls("sts", "GetCallerIdentity", "throttled")
    result = await run_probe(probe(aws), PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.THROTTLED, "aws:throttled:Throttling")
    attempts, _ = attempt_budget(PROBE_TIMEOUT)
    assert stub.requests == ["GetCallerIdentity"] * attempts
    assert aws_calls("sts", "GetCallerIdentity", "throttled") == before + 1


@pytest.mark.parametrize(("timeout", "expected"), [(5.0, (MAX_ATTEMPTS, 1.8)), (2.0, (1, 1.8)), (1.0, (1, 0.9))])
def test_attempt_budget_fits_the_probe_timeout(timeout: float, expected: tuple[int, float]) -> None:
    """One retry only when both attempts and botocore's 1 s backoff fit; never a uselessly short attempt."""
    attempts, per_attempt = attempt_budget(timeout)
    assert (attempts, round(per_attempt, 3)) == expected
    assert attempts * per_attempt + (attempts - 1) * 1.0 <= timeout


async def test_sts_server_error_is_server(aws_env: AwsEnv, aws: AwsClients, aws_stub: Stub) -> None:
    stub = await aws_stub("InternalFailure", status=500)
    aws_env.endpoint(stub.url)
    aws_env.keys(Keys("AKIASERVERERROR00000", "server-error-secret-0000000000"))
    result = await run_probe(probe(aws), PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.SERVER, "sts:InternalFailure")
    assert len(stub.requests) == attempt_budget(PROBE_TIMEOUT)[0]


async def test_sts_endpoint_refused_is_network_and_names_the_endpoint_called(
    aws_env: AwsEnv, aws: AwsClients, moto: Moto
) -> None:
    port = refused_port()
    aws_env.endpoint(f"http://127.0.0.1:{port}")
    aws_env.keys(moto.identities.user)
    result = await run_probe(probe(aws), PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.NETWORK, "sts:refused")
    assert result.hint.startswith(
        f"cannot reach STS at 127.0.0.1:{port}: allow outbound HTTPS (443) to 127.0.0.1:{port}"
    )
    assert "amazonaws.com" not in result.hint
    assert result.details["aws_endpoint"] == f"http://127.0.0.1:{port}"


async def test_silent_sts_endpoint_is_timeout_within_the_probe_timeout(
    aws_env: AwsEnv, aws: AwsClients, moto: Moto, silent_listener: SilentListener
) -> None:
    aws_env.endpoint(silent_listener.url)
    aws_env.keys(moto.identities.user)
    result = await run_probe(probe(aws), PROBE_TIMEOUT)
    assert result.reason is Reason.TIMEOUT
    # botocore's own read timeout, or the probe's deadline if the retry's random backoff was long
    assert result.code in ("sts:read_timeout", "credentials:timeout")
    assert result.duration_ms < PROBE_TIMEOUT * 1000 + 100


async def test_tls_to_a_plain_http_endpoint_is_tls(aws_env: AwsEnv, aws: AwsClients, moto: Moto) -> None:
    aws_env.endpoint(moto.url.replace("http://", "https://"))
    aws_env.keys(moto.identities.user)
    result = await run_probe(probe(aws), PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.TLS, "sts:tls")


async def test_continuous_mode_reloads_the_provider_but_calls_sts_only_when_due(
    moto_env: AwsEnv, aws: AwsClients, credentials_endpoint: CredentialsEndpoint, moto: Moto
) -> None:
    moto_env.container(credentials_endpoint.url)
    p = probe(aws, verify_every=3600)
    before = aws_calls("sts", "GetCallerIdentity")
    first, second = await run_probe(p, PROBE_TIMEOUT), await run_probe(p, PROBE_TIMEOUT)
    assert first.ok and second.ok
    assert (first.details["verified"], second.details["verified"]) == ("now", "0s ago")
    assert second.details["arn"] == first.details["arn"]
    assert aws_calls("sts", "GetCallerIdentity") == before + 1
    assert credentials_endpoint.requests == 2  # the provider itself is asked every run

    credentials_endpoint.credentials = await moto.task_role_keys()  # rotated: a new access key
    third = await run_probe(p, PROBE_TIMEOUT)
    assert third.ok and third.details["verified"] == "now"
    assert aws_calls("sts", "GetCallerIdentity") == before + 2


async def test_continuous_mode_notices_a_broken_endpoint_on_the_next_run(
    moto_env: AwsEnv, aws: AwsClients, credentials_endpoint: CredentialsEndpoint
) -> None:
    """Cached credentials stay valid for an hour; the probe must not hide a dead endpoint behind them."""
    moto_env.container(credentials_endpoint.url)
    p = probe(aws, verify_every=3600)
    assert (await run_probe(p, PROBE_TIMEOUT)).ok
    await credentials_endpoint.set_mode(EndpointMode.STOPPED)
    broken = await run_probe(p, PROBE_TIMEOUT)
    assert (broken.reason, broken.code) == (Reason.NETWORK, "credentials:refused")
    await credentials_endpoint.set_mode(EndpointMode.OK)
    assert (await run_probe(p, PROBE_TIMEOUT)).ok
    assert p.identity is not None


async def test_a_slow_endpoint_within_the_budget_still_works(
    moto_env: AwsEnv, aws: AwsClients, credentials_endpoint: CredentialsEndpoint
) -> None:
    moto_env.container(credentials_endpoint.url)
    await credentials_endpoint.set_mode(EndpointMode.SLOW, delay=0.2)
    result = await run_probe(probe(aws), PROBE_TIMEOUT)
    assert result.ok, result.message


async def test_clients_are_reused_per_service_and_region(moto_env: AwsEnv, aws: AwsClients, moto: Moto) -> None:
    moto_env.keys(moto.identities.user)
    first = await aws.client("secretsmanager", REGION)
    assert await aws.client("secretsmanager", REGION) is first
    assert await aws.client("secretsmanager", "us-east-1") is not first


def test_hint_names_the_ecs_relative_uri_the_task_uses() -> None:
    """On ECS the variable is AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, relative to 169.254.170.2."""
    environ = {
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/abc",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:1/ignored",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": "never-shown-token",
    }
    p = CredentialsProbe(AwsClients(timeout_seconds=1, environ=environ), REGION)
    hint = p.hint(Failure(Reason.TIMEOUT, "credentials:read_timeout", ""))
    assert "http://169.254.170.2/v2/credentials/abc (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)" in hint
    assert "never-shown-token" not in p.hint(Failure(Reason.AUTH, "credentials:http_403", ""))
