"""On EKS: the credentials probe reports the provider each of EKS's two ways to an IAM role gives, against moto's
STS (IRSA: AssumeRoleWithWebIdentity) and a token-checking container endpoint on loopback (EKS Pod Identity)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import ClientSession, web

from agent.aws.clients import AwsClients
from agent.probes.credentials import CredentialsProbe
from agent.probes.runner import run_probe
from agent.sandbox.aws import CredentialsEndpoint, enforce_auth
from tests.support.aws import ACCOUNT, PROBE_TIMEOUT, REGION, AwsEnv, Moto, assert_clean, serving_task_role
from tests.support.secrets import remember

# A service account token as the kubelet projects it: a JWT (moto's STS reads no claim of it).
SERVICE_ACCOUNT_TOKEN = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImVrcyJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2ln"


class PodIdentityEndpoint(CredentialsEndpoint):
    """The EKS Pod Identity Agent's endpoint (169.254.170.23/v1/credentials on a node), on loopback: it answers
    only the token it expects in Authorization, and keeps every Authorization header it received."""

    path = "/v1/credentials"

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.authorizations: list[str | None] = []

    async def _handle(self, request: web.Request) -> web.Response:
        self.authorizations.append(request.headers.get("Authorization"))
        return await super()._handle(request)


@pytest.fixture
async def sts_answers_one_unsigned_call(moto: Moto) -> AsyncIterator[None]:
    """AssumeRoleWithWebIdentity is unsigned (the token is the proof), but moto 5 with auth enforced fails any
    request without an Authorization header (a KeyError, HTTP 500): let exactly the next request through
    unauthenticated (POST /moto-api/reset-auth with body 1), then enforce again whatever happened."""
    async with (
        ClientSession() as http,
        http.post(f"{moto.url}/moto-api/reset-auth", data=b"1", headers={"Content-Type": "text/plain"}) as answer,
    ):
        answer.raise_for_status()
    try:
        yield
    finally:
        await enforce_auth(moto.url)


@pytest.fixture
async def pod_identity(moto: Moto) -> AsyncIterator[PodIdentityEndpoint]:
    async with serving_task_role(moto, PodIdentityEndpoint) as endpoint:
        yield endpoint


@pytest.mark.usefixtures("sts_answers_one_unsigned_call")
async def test_irsa_reports_the_web_identity_provider_and_the_role_sts_gave(
    moto_env: AwsEnv, aws: AwsClients, moto: Moto
) -> None:
    """AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE (what the IRSA webhook injects): botocore's provider trades the
    token at STS (moto) for the role's credentials; the probe names the provider and the assumed role."""
    token = moto_env.tmp_path / "eks.amazonaws.com" / "serviceaccount" / "token"
    await asyncio.to_thread(token.parent.mkdir, parents=True)
    await asyncio.to_thread(token.write_text, SERVICE_ACCOUNT_TOKEN)
    moto_env.set("AWS_ROLE_ARN", moto.identities.role_arn)
    moto_env.set("AWS_WEB_IDENTITY_TOKEN_FILE", str(token))
    result = await run_probe(CredentialsProbe(aws, REGION), PROBE_TIMEOUT)
    assert result.ok, result.message
    assert result.details["provider"] == "assume-role-with-web-identity"
    assert result.details["account"] == ACCOUNT
    assert ":assumed-role/agent-task-role/" in result.details["arn"]
    expires = datetime.fromisoformat(result.details["expires_at"])
    assert timedelta(0) < expires - datetime.now(UTC) <= timedelta(hours=12)
    assert_clean(result, SERVICE_ACCOUNT_TOKEN)


async def test_pod_identity_reports_the_container_provider_and_sends_the_token_file(
    moto_env: AwsEnv, aws: AwsClients, pod_identity: PodIdentityEndpoint
) -> None:
    """AWS_CONTAINER_CREDENTIALS_FULL_URI + AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (what EKS Pod Identity
    injects): the endpoint receives the file's token as Authorization, re-read after the kubelet rotates it."""
    first, rotated = remember(secrets.token_urlsafe(24)), remember(secrets.token_urlsafe(24))
    token_file = moto_env.tmp_path / "eks-pod-identity-token"
    await asyncio.to_thread(token_file.write_text, first)
    moto_env.container(pod_identity.url, token_file=token_file)
    pod_identity.token = first
    result = await run_probe(CredentialsProbe(aws, REGION), PROBE_TIMEOUT)
    assert result.ok, result.message
    assert result.details["provider"] == "container-role"
    assert ":assumed-role/agent-task-role/" in result.details["arn"]
    assert "expires_at" in result.details
    assert pod_identity.authorizations == [first]
    await asyncio.to_thread(token_file.write_text, rotated)
    pod_identity.token = rotated
    assert (await run_probe(CredentialsProbe(aws, REGION), PROBE_TIMEOUT)).ok
    assert pod_identity.authorizations == [first, rotated]
    assert_clean(result, first, rotated)
