"""AWS stand-ins as pytest fixtures: moto as a server, an ECS credentials endpoint, an error stub, sockets.

Every test gets a clean AWS environment (no ~/.aws, no IMDS, no real endpoint): only loopback is reachable.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from aiohttp import web

from agent.aws.clients import AwsClients
from agent.config.dsn import Engine, SslMode
from agent.config.models import TargetConfig
from agent.probes.base import ProbeResult
from agent.sandbox.aws import (
    CredentialsEndpoint,
    Identities,
    Keys,
    MotoServer,
    app_runner,
    assume_role,
    create_secret,
    loopback_socket,
    moto_client,
    seed_identities,
)
from agent.shared.counters import COUNTERS
from tests.support.ports import SilentListener
from tests.support.secrets import remember

Endpoint = TypeVar("Endpoint", bound=CredentialsEndpoint)

ACCOUNT = "123456789012"  # moto's default account
REGION = "eu-west-1"
PROBE_TIMEOUT = 2.0
RDS_HOST = "orders.c9akciq32.eu-west-1.rds.amazonaws.com"


@dataclass(frozen=True, slots=True)
class Moto:
    """The session's moto server and the identities seeded in it (auth is enforced)."""

    url: str
    identities: Identities

    async def task_role_keys(self, denied: bool = False) -> Keys:
        """Fresh temporary credentials of the task role (or of the role without permissions)."""
        ids = self.identities
        role = ids.denied_role_arn if denied else ids.role_arn
        return await assume_role(self.url, ids.admin, role, f"task-{uuid.uuid4().hex[:8]}")

    async def secret(self, value: str | dict[str, object], region: str = REGION) -> tuple[str, str]:
        """Create a uniquely named secret; return (name, ARN)."""
        name = f"db-{uuid.uuid4().hex[:10]}"
        text = value if isinstance(value, str) else json.dumps(value)
        return name, await create_secret(self.url, self.identities.admin, name, text, region)

    async def parameter(self, value: str, region: str = REGION, kind: str = "SecureString") -> tuple[str, str]:
        """Create a uniquely named SSM parameter under /eha/ (a SecureString by default); return (name, ARN)."""
        name = f"/eha/{uuid.uuid4().hex[:10]}/password"
        async with moto_client(self.url, "ssm", self.identities.admin, region) as ssm:
            await ssm.put_parameter(Name=name, Value=value, Type=kind)
            answer = await ssm.get_parameter(Name=name)
        return name, str(answer["Parameter"]["ARN"])


class AwsEnv:
    """The AWS variables of one test, set through monkeypatch (undone after the test)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        self._mp = monkeypatch
        self.tmp_path = tmp_path

    def endpoint(self, url: str) -> None:
        """Send every AWS API call to url (botocore's own AWS_ENDPOINT_URL)."""
        self._mp.setenv("AWS_ENDPOINT_URL", url)

    def service_endpoint(self, service: str, url: str) -> None:
        """Send one service's calls to url (AWS_ENDPOINT_URL_<SERVICE>, e.g. STS, SECRETS_MANAGER)."""
        self._mp.setenv(f"AWS_ENDPOINT_URL_{service}", url)

    def keys(self, keys: Keys) -> None:
        """Credentials in AWS_ACCESS_KEY_ID & co (the `env` provider)."""
        self._mp.setenv("AWS_ACCESS_KEY_ID", keys.access_key)
        self._mp.setenv("AWS_SECRET_ACCESS_KEY", keys.secret_key)
        if keys.token:
            self._mp.setenv("AWS_SESSION_TOKEN", keys.token)

    def set(self, name: str, value: str) -> None:
        """Any other variable (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_PROFILE, HTTP_PROXY...)."""
        self._mp.setenv(name, value)

    def unset(self, name: str) -> None:
        """Remove a variable (e.g. AWS_EC2_METADATA_DISABLED, to let the chain ask a loopback IMDS)."""
        self._mp.delenv(name, raising=False)

    def container(self, url: str, token: str | None = None, token_file: Path | None = None) -> None:
        """Credentials from a container endpoint, as ECS (FULL_URI form) gives a task with a task role."""
        self._mp.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url)
        if token is not None:
            self._mp.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", token)
        if token_file is not None:
            self._mp.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", str(token_file))


@pytest.fixture(scope="session")
async def moto() -> AsyncIterator[Moto]:
    """moto as a real server on loopback, seeded with identities, auth enforced."""
    server = MotoServer()
    url = server.start()
    try:
        yield Moto(url, await seed_identities(url))
    finally:
        server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AwsEnv:
    """No AWS variable from the outside, no ~/.aws files, no instance metadata service."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "missing-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "missing-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return AwsEnv(monkeypatch, tmp_path)


@pytest.fixture
async def aws(aws_env: AwsEnv) -> AsyncIterator[AwsClients]:
    """The agent's AwsClients for one test (configure aws_env before the first call)."""
    async with AwsClients(timeout_seconds=PROBE_TIMEOUT) as clients:
        yield clients


@pytest.fixture
async def moto_env(aws_env: AwsEnv, moto: Moto) -> AwsEnv:
    """AWS calls go to moto."""
    aws_env.endpoint(moto.url)
    return aws_env


@asynccontextmanager
async def serving_task_role(moto: Moto, kind: type[Endpoint]) -> AsyncIterator[Endpoint]:
    """A credentials endpoint of `kind` on loopback handing out the task role's credentials from moto (the keys
    remembered for the session-finish secret scan), stopped afterwards."""
    keys = await moto.task_role_keys()
    remember(keys.secret_key)
    remember(keys.token or "")
    endpoint = kind(keys, role_arn=moto.identities.role_arn)
    await endpoint.start()
    try:
        yield endpoint
    finally:
        await endpoint.stop()


@pytest.fixture
async def credentials_endpoint(moto: Moto) -> AsyncIterator[CredentialsEndpoint]:
    """An ECS credentials endpoint on loopback handing out the task role's credentials from moto."""
    async with serving_task_role(moto, CredentialsEndpoint) as endpoint:
        yield endpoint


class LoopbackHttp:
    """An aiohttp server on a free loopback port answering every method and path with `_handle`."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        """Listen on a free loopback port; return the URL for AWS_ENDPOINT_URL."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = await app_runner(app)
        sock = loopback_socket()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        await web.SockSite(self._runner, sock).start()
        return self.url

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError


class AwsErrorStub(LoopbackHttp):
    """Answers every AWS request with one error moto cannot produce (ExpiredToken, throttling, KMS), as XML
    for query-protocol services (STS, RDS) and as JSON for JSON ones (Secrets Manager)."""

    def __init__(self, code: str, status: int = 400, message: str = "stubbed error") -> None:
        self.code, self.status, self.message = code, status, message
        self.requests: list[str] = []  # the operation of each request, in order
        super().__init__()

    async def _handle(self, request: web.Request) -> web.Response:
        target = request.headers.get("X-Amz-Target")
        if target:
            self.requests.append(target.rsplit(".", 1)[-1])
            body = json.dumps({"__type": self.code, "message": self.message})
            return web.Response(status=self.status, text=body, content_type="application/x-amz-json-1.1")
        form = await request.post()
        self.requests.append(str(form.get("Action", "?")))
        xml = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{self.code}</Code><Message>{self.message}</Message>"
            "</Error><RequestId>sandbox</RequestId></ErrorResponse>"
        )
        return web.Response(status=self.status, text=xml, content_type="text/xml")


@pytest.fixture
async def aws_stub() -> AsyncIterator[Callable[..., Awaitable[AwsErrorStub]]]:
    """Factory: `await aws_stub("Throttling")` starts a stub answering every call with that error."""
    stubs: list[AwsErrorStub] = []

    async def start(code: str, status: int = 400, message: str = "stubbed error") -> AwsErrorStub:
        stub = AwsErrorStub(code, status, message)
        stubs.append(stub)
        await stub.start()
        return stub

    try:
        yield start
    finally:
        for stub in stubs:
            await stub.stop()


@pytest.fixture
def silent_listener() -> Iterator[SilentListener]:
    """A loopback port that accepts connections and never answers."""
    listener = SilentListener()
    try:
        yield listener
    finally:
        listener.close()


def make_target(**overrides: object) -> TargetConfig:
    """A PostgreSQL target on an RDS host in REGION; override any field."""
    fields: dict[str, object] = {
        "name": "orders",
        "engine": Engine.POSTGRESQL,
        "host": RDS_HOST,
        "port": 5432,
        "database": "orders",
        "user": "app",
        "sslmode": SslMode.REQUIRE,
        "region": REGION,
        "configured_region": None,
        "dsn": f"postgresql://app@{RDS_HOST}:5432/orders?sslmode=require",
    }
    fields.update(overrides)
    return TargetConfig.model_validate(fields)


def aws_calls(service: str, operation: str, outcome: str = "success") -> int:
    """How many calls COUNTERS has recorded (tests compare before and after)."""
    return COUNTERS.aws_calls[(service, operation, outcome)]


def assert_clean(result: ProbeResult, *secrets: str | None) -> None:
    """No secret value appears anywhere in a ProbeResult (fields, details, repr, JSON)."""
    rendered = " ".join([repr(result), json.dumps(result.as_dict()), json.dumps(dict(result.details)), result.hint])
    for secret in secrets:
        if secret:
            assert secret not in rendered, f"a secret value leaked into the {result.probe} result"
