"""Every answer of a credentials source has a reason and a hint: the container endpoint's statuses (its own, or a
proxy's in between), EKS web identity (IRSA) set up wrong, and an instance metadata service that gives no token.

Real loopback servers answer; botocore's own chain fetches.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest
from aiohttp import web

from agent.aws.clients import AwsClients
from agent.aws.hints import common_hint
from agent.probes.base import ProbeResult, TargetState
from agent.probes.credentials import CredentialsProbe, credential_facts
from agent.probes.runner import run_probe
from agent.probes.secret import SecretProbe
from agent.sandbox.aws import CredentialsEndpoint, EndpointMode, app_runner, loopback_socket
from agent.shared.reasons import Failure, Reason, Scope
from tests.support.aws import PROBE_TIMEOUT, REGION, AwsEnv, make_target

ROLE_ARN = "arn:aws:iam::123456789012:role/orders-app"
UNFILLED = re.compile(r"<[a-z_]+>")  # a template field render() had no value for


async def credentials(aws: AwsClients) -> ProbeResult:
    result = await run_probe(CredentialsProbe(aws, REGION), PROBE_TIMEOUT)
    assert not result.ok
    assert not UNFILLED.search(result.hint), result.hint
    return result


class Answer:
    """A loopback HTTP server answering every GET with one fixed status, headers and body."""

    def __init__(self, status: int, body: str, headers: Mapping[str, str]) -> None:
        self.status, self.body, self.headers = status, body, dict(headers)
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self._runner = await app_runner(app)
        sock = loopback_socket()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/v2/credentials/task"
        await web.SockSite(self._runner, sock).start()
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, _request: web.Request) -> web.Response:
        return web.Response(status=self.status, text=self.body, headers=self.headers)


@pytest.fixture
async def answer() -> AsyncIterator[list[Answer]]:
    started: list[Answer] = []
    yield started
    for server in started:
        await server.stop()


async def answering(started: list[Answer], status: int, body: str, **headers: str) -> str:
    server = Answer(status, body, {k.replace("_", "-"): v for k, v in headers.items()})
    started.append(server)
    return await server.start()


# -- the container credentials endpoint ---------------------------------------------------------------------


async def test_400_credentials_not_found_is_the_task_s_own_and_replacing_it_helps(
    aws_env: AwsEnv, aws: AwsClients, credentials_endpoint: CredentialsEndpoint
) -> None:
    """The ECS agent has no credentials for this task's ID (amazon-ecs-agent answers 400 InvalidIdInRequest)."""
    aws_env.container(credentials_endpoint.url)
    await credentials_endpoint.set_mode(EndpointMode.NOT_FOUND)
    result = await credentials(aws)
    assert (result.reason, result.code, result.scope) == (Reason.AUTH, "credentials:not_found", Scope.TASK)
    assert "the endpoint has no credentials for this task" in result.message
    assert "Credentials not found" in result.message
    assert result.hint.startswith(f"the ECS agent at {credentials_endpoint.url} (AWS_CONTAINER_CREDENTIALS_FULL_URI)")
    assert "replacing the task fixes it" in result.hint


async def test_429_is_the_host_s_shared_rate_limit_not_auth(
    aws_env: AwsEnv, aws: AwsClients, credentials_endpoint: CredentialsEndpoint
) -> None:
    aws_env.container(credentials_endpoint.url)
    await credentials_endpoint.set_mode(EndpointMode.THROTTLED)
    result = await credentials(aws)
    assert (result.reason, result.code, result.scope) == (Reason.THROTTLED, "credentials:http_429", Scope.SHARED)
    assert "shared by every task on the host" in result.hint


async def test_403_from_the_endpoint_is_its_refusal_of_the_token(
    aws_env: AwsEnv, aws: AwsClients, credentials_endpoint: CredentialsEndpoint
) -> None:
    aws_env.container(credentials_endpoint.url)
    await credentials_endpoint.set_mode(EndpointMode.FORBIDDEN)
    result = await credentials(aws)
    assert (result.reason, result.code, result.scope) == (Reason.AUTH, "credentials:http_403", Scope.TASK)
    assert "proxy" not in result.message and "NO_PROXY" not in result.hint


async def test_403_from_a_proxy_in_between_is_network_and_the_hint_is_no_proxy(
    aws_env: AwsEnv, aws: AwsClients, credentials_endpoint: CredentialsEndpoint
) -> None:
    """A squid refusal (HTML page, Via, X-Squid-Error): the endpoint never saw the request. The proxy variables are
    named as facts; a proxy's user and password never are."""
    aws_env.container(credentials_endpoint.url)
    aws_env.set("HTTP_PROXY", "http://agent:proxy-pa55@proxy.corp:3128")
    aws_env.set("NO_PROXY", "localhost,.internal")
    await credentials_endpoint.set_mode(EndpointMode.PROXY_FORBIDDEN)
    result = await credentials(aws)
    assert (result.reason, result.code, result.scope) == (Reason.NETWORK, "credentials:proxy_http_403", Scope.SHARED)
    assert result.message.endswith(
        "HTTP 403 came from a proxy (Via: 1.1 proxy.internal (squid/6.6)), not from the credentials endpoint"
    )
    assert "Add 127.0.0.1 (and 169.254.169.254) to NO_PROXY" in result.hint
    assert "here HTTP_PROXY=proxy.corp:3128, and NO_PROXY=localhost,.internal, which does not cover 127.0.0.1" in (
        result.hint
    )
    assert "EgressIgnoredIPs=169.254.170.2,169.254.169.254" in result.hint
    assert "proxy-pa55" not in result.hint + result.message and "agent:" not in result.hint


@pytest.mark.parametrize(
    ("body", "headers", "evidence"),
    [
        ('{"message": "denied"}', {"Via": "1.1 egress-gw"}, "Via: 1.1 egress-gw"),
        ("RBAC: access denied", {"Server": "envoy"}, "Server: envoy"),
        ("<html><body>Forbidden</body></html>", {}, "an HTML page where the endpoint answers JSON"),
    ],
    ids=["via", "envoy", "html"],
)
async def test_every_sign_of_a_proxy_is_read(
    aws_env: AwsEnv, aws: AwsClients, answer: list[Answer], body: str, headers: dict[str, str], evidence: str
) -> None:
    url = await answering(answer, 403, body, **headers)
    aws_env.container(url)
    result = await credentials(aws)
    assert (result.reason, result.code) == (Reason.NETWORK, "credentials:proxy_http_403")
    assert f"({evidence})" in result.message
    assert "no HTTP(S)_PROXY is set in this container" in result.hint


async def test_a_proxy_s_502_is_told_apart_too(aws_env: AwsEnv, aws: AwsClients, answer: list[Answer]) -> None:
    """Any status a proxy answers is the path's fault, not the endpoint's (here: its upstream is unreachable)."""
    aws_env.container(await answering(answer, 502, "<!DOCTYPE html><title>502</title>", Via="1.1 squid"))
    result = await credentials(aws)
    assert (result.reason, result.code) == (Reason.NETWORK, "credentials:proxy_http_502")


async def test_a_json_403_without_proxy_headers_is_the_endpoint_s(
    aws_env: AwsEnv, aws: AwsClients, answer: list[Answer]
) -> None:
    aws_env.container(await answering(answer, 403, '{"code": "AccessDenied", "message": "bad token"}'))
    result = await credentials(aws)
    assert (result.reason, result.code) == (Reason.AUTH, "credentials:http_403")


# -- EKS web identity (IRSA) ---------------------------------------------------------------------------------


@pytest.mark.parametrize("probe", ["credentials", "secret"])
async def test_web_identity_token_file_missing_is_config_naming_the_variable(
    aws_env: AwsEnv, aws: AwsClients, probe: str
) -> None:
    token = aws_env.tmp_path / "eks.amazonaws.com" / "serviceaccount" / "token"
    aws_env.set("AWS_WEB_IDENTITY_TOKEN_FILE", str(token))
    aws_env.set("AWS_ROLE_ARN", ROLE_ARN)
    result = await run_either(aws, probe)
    assert (result.reason, result.code) == (Reason.CONFIG, "web_identity:token_file_missing")
    assert result.message.startswith(f"AWS_WEB_IDENTITY_TOKEN_FILE={token} does not exist")
    assert result.hint.startswith(f"AWS_WEB_IDENTITY_TOKEN_FILE={token} is not in this container")
    assert "eks.amazonaws.com/role-arn" in result.hint
    assert "container authorization token" not in result.message + result.hint


@pytest.mark.parametrize("probe", ["credentials", "secret"])
async def test_web_identity_without_a_role_arn_is_config(aws_env: AwsEnv, aws: AwsClients, probe: str) -> None:
    token = aws_env.tmp_path / "token"
    await asyncio.to_thread(token.write_text, "eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl")
    aws_env.set("AWS_WEB_IDENTITY_TOKEN_FILE", str(token))
    result = await run_either(aws, probe)
    assert (result.reason, result.code) == (Reason.CONFIG, "web_identity:no_role_arn")
    assert (
        result.message == "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not: there is no role to ask STS for"
    )
    assert result.hint.startswith("set AWS_ROLE_ARN to the IAM role this service account may assume")


async def run_either(aws: AwsClients, probe: str) -> ProbeResult:
    if probe == "credentials":
        return await credentials(aws)
    secret = SecretProbe(make_target(secret_id="prod/orders"), TargetState(), aws)
    result = await run_probe(secret, PROBE_TIMEOUT)
    assert not UNFILLED.search(result.hint), result.hint
    return result


async def test_container_token_file_missing_names_its_own_variable(
    aws_env: AwsEnv, aws: AwsClients, credentials_endpoint: CredentialsEndpoint
) -> None:
    token = aws_env.tmp_path / "no-such-token"
    aws_env.container(credentials_endpoint.url, token_file=token)
    result = await credentials(aws)
    assert (result.reason, result.code) == (Reason.CONFIG, "credentials:token_file_missing")
    assert result.message == f"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE={token} does not exist"


# -- the instance metadata service (IMDS) --------------------------------------------------------------------


async def test_imds_without_a_token_and_v1_disabled_is_config(
    aws_env: AwsEnv, answer: list[Answer], tmp_path: Path
) -> None:
    """IMDSv2 refuses the token PUT (as a container beyond the hop limit sees it) and IMDSv1 is off: botocore's
    IMDS provider raises MetadataRetrievalError past the chain."""
    url = await answering(answer, 403, "")
    aws_env.unset("AWS_EC2_METADATA_DISABLED")
    aws_env.set("AWS_EC2_METADATA_SERVICE_ENDPOINT", url.removesuffix("/v2/credentials/task") + "/")
    aws_env.set("AWS_EC2_METADATA_V1_DISABLED", "true")
    async with AwsClients(timeout_seconds=PROBE_TIMEOUT) as aws:
        result = await credentials(aws)
    assert (result.reason, result.code) == (Reason.CONFIG, "imds:no_token")
    assert "HttpPutResponseHopLimit 2" in result.hint


def test_on_ecs_the_proxy_hint_names_169_254_170_2_and_whether_no_proxy_covers_it() -> None:
    """On ECS (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI) the endpoint is 169.254.170.2: the hint names that address,
    and says whether NO_PROXY (here a CIDR block, as curl and Go read it) already exempts it."""
    failure = Failure(Reason.NETWORK, "credentials:proxy_http_403", "")
    environ = {"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/3f8e", "HTTPS_PROXY": "http://proxy:3128"}
    hint = common_hint(failure, credential_facts(AwsClients(1.0, environ), "container-role"))
    assert "Add 169.254.170.2 (and 169.254.169.254) to NO_PROXY" in hint
    assert "(here HTTPS_PROXY=proxy:3128, and NO_PROXY is unset)" in hint
    environ["NO_PROXY"] = "169.254.0.0/16"
    hint = common_hint(failure, credential_facts(AwsClients(1.0, environ), "container-role"))
    assert "and NO_PROXY=169.254.0.0/16, which covers 169.254.170.2" in hint
    assert "curl --noproxy '*' -s http://169.254.170.2/v2/credentials/3f8e" in hint
