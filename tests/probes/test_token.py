"""TokenProbe: local signing with real credentials providers, always through run_probe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import botocore.auth
import pytest

from agent.aws.clients import AwsClients
from agent.config.models import TargetConfig
from agent.probes.base import TargetState
from agent.probes.runner import run_probe
from agent.probes.token import TokenProbe
from agent.sandbox.aws import CredentialsEndpoint, EndpointMode, Keys
from agent.shared.reasons import Failure, Reason
from tests.support.aws import PROBE_TIMEOUT, RDS_HOST, REGION, AwsEnv, assert_clean, make_target

KEYS = Keys("AKIATOKENPROBE000000", "token-probe-secret-key-000000000000000")


def iam_target(**overrides: object) -> TargetConfig:
    return make_target(iam_auth=True, **overrides)


def probe(
    aws: AwsClients, regenerate_after: float | None = None, **overrides: object
) -> tuple[TokenProbe, TargetState]:
    state = TargetState()
    return TokenProbe(iam_target(**overrides), state, aws, regenerate_after_seconds=regenerate_after), state


def token_of(state: TargetState) -> str:
    assert state.token is not None
    return state.token.get_secret_value()


async def test_token_is_signed_for_the_host_user_and_region(aws_env: AwsEnv, aws: AwsClients) -> None:
    aws_env.keys(KEYS)
    p, state = probe(aws)
    result = await run_probe(p, PROBE_TIMEOUT)
    assert result.ok, result.message
    assert (result.details["region"], result.details["user"]) == (REGION, "app")
    expires = datetime.fromisoformat(result.details["expires_at"])
    assert timedelta(minutes=14) < expires - datetime.now(UTC) <= timedelta(minutes=15)
    token = token_of(state)
    assert token.startswith(f"{RDS_HOST}:5432/?Action=connect&DBUser=app&")
    assert f"%2F{REGION}%2Frds-db%2Faws4_request" in token
    assert token not in repr(state)
    assert_clean(result, token, KEYS.secret_key)


async def test_token_is_what_botocores_rds_signer_makes(
    aws_env: AwsEnv, aws: AwsClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent signs without an RDS client; at the same instant its token must be the RDS client's, byte for byte
    (special characters in the user included, and a session token)."""
    keys = Keys("ASIATOKENPROBE000001", "token-probe-secret-key-000000000000001", token="session+token/=value")
    aws_env.keys(keys)
    instant = datetime(2026, 11, 29, 10, 0, 0)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: instant)
    from aiobotocore.session import get_session

    user = "app user+1@x"
    ours = await aws.generate_db_auth_token(RDS_HOST, 5432, user, REGION)
    async with get_session().create_client("rds", region_name=REGION) as rds:
        theirs = await rds.generate_db_auth_token(DBHostname=RDS_HOST, Port=5432, DBUsername=user, Region=REGION)
    assert ours == theirs
    assert "X-Amz-Security-Token=" in ours and "X-Amz-Expires=900" in ours


async def test_token_is_reused_until_the_configured_age(aws_env: AwsEnv, aws: AwsClients) -> None:
    aws_env.keys(KEYS)
    p, state = probe(aws, regenerate_after=600)
    first = await run_probe(p, PROBE_TIMEOUT)
    generated_at = state.token_generated_at
    second = await run_probe(p, PROBE_TIMEOUT)
    assert (first.details["reused"], second.details["reused"]) == ("false", "true")
    assert state.token_generated_at == generated_at
    assert second.details["expires_at"] == first.details["expires_at"]

    assert generated_at is not None
    state.token_generated_at = generated_at - 601  # the token is now 10 minutes old
    third = await run_probe(p, PROBE_TIMEOUT)
    assert third.details["reused"] == "false"
    assert state.token_generated_at is not None and state.token_generated_at > generated_at - 601


async def test_without_regenerate_age_every_run_signs_a_new_token(aws_env: AwsEnv, aws: AwsClients) -> None:
    aws_env.keys(KEYS)
    p, state = probe(aws)
    await run_probe(p, PROBE_TIMEOUT)
    generated_at = state.token_generated_at
    second = await run_probe(p, PROBE_TIMEOUT)
    assert second.details["reused"] == "false" and state.token_generated_at != generated_at


async def test_region_mismatch_is_config_and_names_both_regions(aws_env: AwsEnv, aws: AwsClients) -> None:
    aws_env.keys(KEYS)
    p, state = probe(aws, region="us-east-1", configured_region="us-east-1")
    result = await run_probe(p, PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.CONFIG, "token:region_mismatch")
    assert REGION in result.message and "us-east-1" in result.message
    assert f"AGENT_AWS_REGION={REGION}" in result.hint
    assert state.token is None


async def test_no_credentials_is_config(aws_env: AwsEnv, aws: AwsClients) -> None:
    result = await run_probe(probe(aws)[0], PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.CONFIG, "aws:no_credentials")
    assert "taskRoleArn" in result.hint


async def test_broken_credentials_endpoint_is_network(
    aws_env: AwsEnv, aws: AwsClients, credentials_endpoint: CredentialsEndpoint
) -> None:
    aws_env.container(credentials_endpoint.url)
    await credentials_endpoint.set_mode(EndpointMode.STOPPED)
    result = await run_probe(probe(aws)[0], PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.NETWORK, "credentials:refused")
    assert credentials_endpoint.url in result.hint


async def test_container_role_credentials_sign_tokens(
    aws_env: AwsEnv, aws: AwsClients, credentials_endpoint: CredentialsEndpoint
) -> None:
    aws_env.container(credentials_endpoint.url)
    p, state = probe(aws)
    result = await run_probe(p, PROBE_TIMEOUT)
    assert result.ok, result.message
    keys = credentials_endpoint.credentials
    assert keys is not None and keys.token is not None
    assert_clean(result, token_of(state), keys.secret_key, keys.token)


async def test_auth_hint_shows_the_hand_check_and_the_rds_db_connect_resource(aws: AwsClients) -> None:
    """The token probe's hint for an auth failure: the CLI command to sign by hand and the IAM resource to allow."""
    p, _ = probe(aws)
    hint = p.hint(Failure(Reason.AUTH, "rds:AccessDenied", "refused"))
    assert f"--hostname {RDS_HOST} --port 5432 --username app --region {REGION}" in hint
    assert f"arn:aws:rds-db:{REGION}:<account>:dbuser:<DbiResourceId>/app" in hint
    assert f"DBInstances[?Endpoint.Address==`{RDS_HOST}`].DbiResourceId" in hint
