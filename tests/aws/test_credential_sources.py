"""The credentials sources botocore fetches from, as AwsClients sets them up: the container authorization token is
a secret wherever an endpoint echoes it, and no source follows a redirect to keys served somewhere else."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiobotocore.session  # noqa: F401 - imported here, not first inside a running loop (the blocking guard)
import pytest
from aiohttp import web

from agent.aws.clients import AwsClients
from agent.probes.credentials import CredentialsProbe
from agent.probes.runner import run_probe
from agent.shared.reasons import Reason
from agent.shared.redact import MASK
from tests.support.agent_process import serving
from tests.support.aws import PROBE_TIMEOUT, REGION, AwsEnv, LoopbackHttp, Moto
from tests.support.databases import PgAdmin, Server, random_password
from tests.support.secrets import remember
from tests.support.serve import pg_env

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Endpoint(LoopbackHttp):
    """One loopback HTTP server answering every request with `handler`; counts what it was asked."""

    def __init__(self, handler: Handler) -> None:
        super().__init__()
        self.handler = handler
        self.requests: list[str] = []

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(f"{request.method} {request.path}")
        return await self.handler(request)


@pytest.fixture
async def endpoints() -> AsyncIterator[Callable[[Handler], Awaitable[Endpoint]]]:
    """Factory: `await endpoints(handler)` starts a loopback endpoint; all are stopped after the test."""
    started: list[Endpoint] = []

    async def start(handler: Handler) -> Endpoint:
        endpoint = Endpoint(handler)
        await endpoint.start()
        started.append(endpoint)
        return endpoint

    try:
        yield start
    finally:
        for endpoint in started:
            await endpoint.stop()


async def _echo_token_403(request: web.Request) -> web.Response:
    """A 403 in the endpoint's own JSON shape that quotes the Authorization header it was sent (an HTML page would
    read as a proxy's, whose body the agent does not repeat)."""
    said = request.headers.get("Authorization", "")
    return web.json_response(
        {"code": "AccessDenied", "message": f"authorization token {said} is not valid here"}, status=403
    )


def _keys_document() -> dict[str, str]:
    expiration = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "AccessKeyId": "ASIAREDIRECTED000001",
        "SecretAccessKey": remember(secrets.token_hex(8) + "-secret-key-served-after-a-redirect"),
        "Token": remember(secrets.token_hex(8) + "-token-served-after-a-redirect"),
        "Expiration": expiration,
        "Code": "Success",
        "Type": "AWS-HMAC",
        "LastUpdated": expiration,
    }


async def _keys(_request: web.Request) -> web.Response:
    return web.json_response(_keys_document())


def _token() -> str:
    return remember(secrets.token_hex(8) + "-container-authorization-token")


@pytest.mark.parametrize("source", ["variable", "file"])
async def test_a_403_page_quoting_the_authorization_token_never_shows_it(
    aws_env: AwsEnv, endpoints: Callable[[Handler], Awaitable[Endpoint]], tmp_path: Path, source: str
) -> None:
    endpoint = await endpoints(_echo_token_403)
    token = _token()
    if source == "file":
        path = tmp_path / "token"
        await asyncio.to_thread(path.write_text, token)
        aws_env.container(f"{endpoint.url}/v2/credentials", token_file=path)
    else:
        aws_env.container(f"{endpoint.url}/v2/credentials", token=token)
    async with AwsClients(timeout_seconds=PROBE_TIMEOUT) as aws:
        result = await run_probe(CredentialsProbe(aws, REGION), PROBE_TIMEOUT)
    assert (result.ok, result.code) == (False, "credentials:http_403")
    assert endpoint.requests, "the endpoint was never asked"
    assert f"authorization token {MASK} is not valid" in result.message  # the page was quoted, the token masked
    rendered = json.dumps(result.as_dict()) + repr(result) + result.hint
    assert token not in rendered


async def test_the_served_agent_never_shows_an_echoed_token_on_status_the_page_or_the_log(
    aws_env: AwsEnv,
    moto: Moto,
    endpoints: Callable[[Handler], Awaitable[Endpoint]],
    pg_server: Server,
    pg_admin: PgAdmin,
    tmp_path: Path,
) -> None:
    """The incident: an endpoint whose 403 page quotes the token put it on /status, / and stdout."""
    endpoint = await endpoints(_echo_token_403)
    token = _token()
    path = tmp_path / "token"
    await asyncio.to_thread(path.write_text, token)
    aws_env.endpoint(moto.url)
    aws_env.container(f"{endpoint.url}/v2/credentials", token_file=path)
    password = random_password()
    user = await pg_admin.role(password)
    env = {**pg_env(pg_server, user, password), "AGENT_DB_SECRET_ID": "orders/db", "AWS_REGION": REGION}
    env.pop("AGENT_DB_PASSWORD")
    async with serving(env) as agent:
        status = await asyncio.to_thread(
            agent.wait_for, lambda body: "credentials:http_403" in json.dumps(body), "/status", 15.0
        )
        page = (await asyncio.to_thread(agent.get, "/")).body.decode()
        output = agent.captured.output()
        lines = agent.log_lines()
    assert MASK in json.dumps(status)
    assert "credentials:http_403" in page
    for where, text in (("/status", json.dumps(status)), ("/", page), ("the log", json.dumps(lines) + output)):
        assert token not in text, f"the container authorization token is on {where}"


async def test_a_redirect_from_the_container_endpoint_is_never_followed(
    aws_env: AwsEnv, endpoints: Callable[[Handler], Awaitable[Endpoint]]
) -> None:
    """The endpoint answers 302 to a second server that serves keys: those keys are never fetched or used."""
    elsewhere = await endpoints(_keys)

    async def redirect(_request: web.Request) -> web.Response:
        raise web.HTTPFound(f"{elsewhere.url}/v2/credentials/other-task")

    endpoint = await endpoints(redirect)
    aws_env.container(f"{endpoint.url}/v2/credentials/this-task", token=_token())
    async with AwsClients(timeout_seconds=PROBE_TIMEOUT) as aws:
        result = await run_probe(CredentialsProbe(aws, REGION), PROBE_TIMEOUT)
    assert endpoint.requests, "the endpoint was never asked"
    assert elsewhere.requests == [], "the redirect was followed"
    assert (result.ok, result.reason, result.code) == (False, Reason.CONFIG, "credentials:redirect")
    assert "HTTP 302, a redirect" in result.message
    assert "NO_PROXY" in result.hint and endpoint.url in result.hint


@pytest.mark.parametrize("status", [301, 307, 308])
async def test_every_redirect_status_is_refused(
    aws_env: AwsEnv, endpoints: Callable[[Handler], Awaitable[Endpoint]], status: int
) -> None:
    elsewhere = await endpoints(_keys)

    async def redirect(_request: web.Request) -> web.Response:
        return web.Response(status=status, headers={"Location": f"{elsewhere.url}/creds"})

    endpoint = await endpoints(redirect)
    aws_env.container(f"{endpoint.url}/creds")
    async with AwsClients(timeout_seconds=PROBE_TIMEOUT) as aws:
        result = await run_probe(CredentialsProbe(aws, REGION), PROBE_TIMEOUT)
    assert elsewhere.requests == []
    assert (result.reason, result.code) == (Reason.CONFIG, "credentials:redirect")


async def test_a_redirect_from_the_instance_metadata_service_is_never_followed(
    aws_env: AwsEnv, monkeypatch: pytest.MonkeyPatch, endpoints: Callable[[Handler], Awaitable[Endpoint]]
) -> None:
    """IMDS (the chain's last source, an EC2 instance's role) sends its role listing elsewhere: no keys come of it."""
    elsewhere = await endpoints(_keys_or_role)

    async def metadata(request: web.Request) -> web.Response:
        if request.method == "PUT" and request.path == "/latest/api/token":
            return web.Response(text="imds-session-token")
        raise web.HTTPFound(f"{elsewhere.url}{request.path}")

    imds = await endpoints(metadata)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "false")
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url + "/")
    async with AwsClients(timeout_seconds=PROBE_TIMEOUT) as aws:
        credentials = await aws.load_credentials()
    assert any(r.startswith("GET /latest/meta-data/iam/security-credentials") for r in imds.requests), imds.requests
    assert elsewhere.requests == [], "the redirect was followed"
    assert credentials is None


async def _keys_or_role(request: web.Request) -> web.Response:
    if request.path.rstrip("/") == "/latest/meta-data/iam/security-credentials":
        return web.Response(text="role-elsewhere")
    return web.json_response(_keys_document())
