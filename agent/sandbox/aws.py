"""AWS stand-ins on loopback for `ecs-health-agent sandbox`: moto as a real server, an ECS container-credentials
endpoint. Needs moto (the `sandbox` extra).

The tests and the bench build their worlds from the same blocks; stand-ins only tests use (an AWS error stub,
silent and refused ports) live in tests/support/. The agent reaches all of them through the standard variables
(AWS_ENDPOINT_URL, AWS_CONTAINER_CREDENTIALS_FULL_URI): no special code path.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from aiohttp import ClientSession, web

ROLE_NAME = "agent-task-role"  # may read every secret
DENIED_ROLE_NAME = "agent-task-role-denied"  # may do nothing
USER_NAME = "agent-user"  # an IAM user with the task role's permissions, for access-key setups
_ADMIN = "sandbox-admin"


def _allow(action: str | list[str], **extra: object) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, **extra}]})


_TRUST = _allow("sts:AssumeRole", Principal={"AWS": "*"})
_TASK_POLICY = _allow(["secretsmanager:GetSecretValue", "ssm:GetParameter", "rds-db:connect"], Resource="*")
_ADMIN_POLICY = _allow("*", Resource="*")


@dataclass(frozen=True, slots=True)
class Keys:
    """An AWS key pair, with a session token and expiry for temporary credentials. Test data only."""

    access_key: str
    secret_key: str
    token: str | None = None
    expiration: datetime | None = None

    def __repr__(self) -> str:
        return f"Keys({self.access_key!r}, secret_key=[REDACTED])"


@dataclass(frozen=True, slots=True)
class Identities:
    """What seed_identities() created in moto."""

    admin: Keys
    user: Keys
    role_arn: str
    denied_role_arn: str


class MotoServer:
    """moto as a real HTTP server on 127.0.0.1 (a thread in this process: moto's state is process-wide)."""

    def __init__(self) -> None:
        self._server: Any = None

    def start(self) -> str:
        """Start on a free loopback port and return its URL."""
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        return self.url

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT"""
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def stop(self) -> None:
        """Stop the server and close its listening socket (moto 5.2's stop() leaves it open)."""
        if self._server is not None:
            self._server.stop()
            self._server._server.server_close()  # private API: listed in agent/shared/private_api.py
            self._server = None


@functools.cache
def _session() -> Any:
    from aiobotocore.session import get_session

    return get_session()  # one session: its loader caches the service models between clients


def moto_client(url: str, service: str, keys: Keys, region: str = "us-east-1") -> Any:
    """An aiobotocore client for the sandbox itself (explicit endpoint and keys), as `async with`."""
    return _session().create_client(
        service,
        region_name=region,
        endpoint_url=url,
        aws_access_key_id=keys.access_key,
        aws_secret_access_key=keys.secret_key,
        aws_session_token=keys.token,
    )


async def seed_identities(url: str) -> Identities:
    """Create an admin, a task role, a role without permissions and a user in moto, then enforce auth."""
    bootstrap = Keys("AKIABOOTSTRAP0000000", "bootstrap-not-checked-before-auth-is-on")
    async with moto_client(url, "iam", bootstrap) as iam:
        admin = await _user(iam, _ADMIN, _ADMIN_POLICY)
        user = await _user(iam, USER_NAME, _TASK_POLICY)
        role_arn = await _role(iam, ROLE_NAME, _TASK_POLICY)
        denied_role_arn = await _role(iam, DENIED_ROLE_NAME, None)
    await enforce_auth(url)
    return Identities(admin=admin, user=user, role_arn=role_arn, denied_role_arn=denied_role_arn)


async def _user(iam: Any, name: str, policy: str) -> Keys:
    await iam.create_user(UserName=name)
    await iam.put_user_policy(UserName=name, PolicyName="sandbox", PolicyDocument=policy)
    key = (await iam.create_access_key(UserName=name))["AccessKey"]
    return Keys(key["AccessKeyId"], key["SecretAccessKey"])


async def _role(iam: Any, name: str, policy: str | None) -> str:
    role = await iam.create_role(RoleName=name, AssumeRolePolicyDocument=_TRUST)
    if policy is not None:
        await iam.put_role_policy(RoleName=name, PolicyName="sandbox", PolicyDocument=policy)
    return str(role["Role"]["Arn"])


async def enforce_auth(url: str) -> None:
    """Make moto check signatures and IAM policies from now on (POST /moto-api/reset-auth with body 0)."""
    async with (
        ClientSession() as http,
        http.post(f"{url}/moto-api/reset-auth", data=b"0", headers={"Content-Type": "text/plain"}) as answer,
    ):
        answer.raise_for_status()


async def assume_role(url: str, admin: Keys, role_arn: str, session_name: str = "sandbox-task") -> Keys:
    """Temporary credentials for a role, as the ECS agent would hand them to a task."""
    async with moto_client(url, "sts", admin) as sts:
        answer = await sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name)
    c = answer["Credentials"]
    return Keys(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"], c["Expiration"])


async def create_secret(url: str, admin: Keys, name: str, value: str, region: str = "us-east-1") -> str:
    """Create a secret holding `value`; return its ARN."""
    async with moto_client(url, "secretsmanager", admin, region) as sm:
        answer = await sm.create_secret(Name=name, SecretString=value)
    return str(answer["ARN"])


async def schedule_secret_deletion(url: str, admin: Keys, secret_id: str, region: str = "us-east-1") -> None:
    """Schedule a secret for deletion (reading it then fails with InvalidRequestException)."""
    async with moto_client(url, "secretsmanager", admin, region) as sm:
        await sm.delete_secret(SecretId=secret_id, RecoveryWindowInDays=7)


class EndpointMode(StrEnum):
    """How the fake container-credentials endpoint behaves."""

    OK = "ok"
    SERVER_ERROR = "500"
    FORBIDDEN = "403"
    THROTTLED = "429"  # the endpoint's per-host rate limit (every task on the host shares it)
    NOT_FOUND = "400"  # the ECS agent has no credentials for this task (e.g. it lost its state)
    PROXY_FORBIDDEN = "proxy-403"  # a proxy between the task and the endpoint refuses, as squid does
    SLOW = "slow"  # answers after `delay` seconds
    HANG = "hang"  # accepts and never answers
    EXPIRED = "expired"  # answers with credentials that expired an hour ago
    STOPPED = "stopped"  # not listening: connections are refused


def _proxy_refusal() -> web.Response:
    """A forward proxy's refusal, as squid sends it: an HTML page, Via and X-Squid-Error headers."""
    page = "<!DOCTYPE html><html><head><title>ERROR: The requested URL could not be retrieved</title></head></html>"
    headers = {"Via": "1.1 proxy.internal (squid/6.6)", "X-Squid-Error": "ERR_ACCESS_DENIED 0", "Server": "squid/6.6"}
    return web.Response(status=403, text=page, content_type="text/html", headers=headers)


class CredentialsEndpoint:
    """The ECS container-credentials endpoint, on loopback: AWS_CONTAINER_CREDENTIALS_FULL_URI points here."""

    path = "/v2/credentials/sandbox-task"

    def __init__(self, credentials: Keys | None = None, token: str | None = None, role_arn: str = "") -> None:
        self.credentials = credentials
        self.token = token  # the Authorization header it expects, if any
        self.role_arn = role_arn
        self.mode = EndpointMode.OK
        self.delay = 0.0
        self.requests = 0
        self._runner: web.AppRunner | None = None
        self._site: web.SockSite | None = None
        self._port = 0
        self._release = asyncio.Event()

    @property
    def url(self) -> str:
        """The full URI to put in AWS_CONTAINER_CREDENTIALS_FULL_URI."""
        return f"http://127.0.0.1:{self._port}{self.path}"

    async def start(self) -> str:
        """Listen on a free loopback port; return the URL."""
        app = web.Application()
        app.router.add_get(self.path, self._handle)
        self._runner = await app_runner(app)
        await self._listen()
        return self.url

    async def _listen(self) -> None:
        assert self._runner is not None
        sock = loopback_socket(self._port)  # the same port again after STOPPED
        self._port = sock.getsockname()[1]
        self._site = web.SockSite(self._runner, sock)
        await self._site.start()

    async def set_mode(self, mode: EndpointMode, delay: float = 0.0) -> None:
        """Switch behaviour; STOPPED closes the listener, any other mode reopens it on the same port."""
        self.mode, self.delay = mode, delay
        if mode is EndpointMode.STOPPED and self._site is not None:
            await self._site.stop()
            self._site = None
        elif mode is not EndpointMode.STOPPED and self._site is None:
            await self._listen()

    async def stop(self) -> None:
        """Release hung requests and stop listening."""
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = self._site = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.mode is EndpointMode.HANG:
            await self._release.wait()
        elif self.mode is EndpointMode.SLOW:
            await asyncio.sleep(self.delay)
        if self.token is not None and request.headers.get("Authorization") != self.token:
            return web.json_response({"message": "invalid authorization token"}, status=403)
        if self.mode is EndpointMode.SERVER_ERROR:
            return web.json_response({"message": "internal error"}, status=500)
        if self.mode is EndpointMode.FORBIDDEN:
            return web.json_response({"message": "access denied"}, status=403)
        if self.mode is EndpointMode.THROTTLED:
            return web.json_response({"message": "too many requests"}, status=429)
        if self.mode is EndpointMode.NOT_FOUND:  # amazon-ecs-agent's answer for a credentials ID it does not know
            body = {"code": "InvalidIdInRequest", "message": "CredentialsV2Request: Credentials not found"}
            return web.json_response(body, status=400)
        if self.mode is EndpointMode.PROXY_FORBIDDEN:
            return _proxy_refusal()
        return web.json_response(self._body())

    def _body(self) -> dict[str, str]:
        keys = self.credentials or Keys("ASIASANDBOX000000000", "sandbox-secret-key", "sandbox-session-token")
        expiration = keys.expiration or datetime.now(UTC) + timedelta(hours=1)
        if self.mode is EndpointMode.EXPIRED:
            expiration = datetime.now(UTC) - timedelta(hours=1)
        return {
            "AccessKeyId": keys.access_key,
            "SecretAccessKey": keys.secret_key,
            "Token": keys.token or "",
            "Expiration": expiration.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "RoleArn": self.role_arn,
        }


async def app_runner(app: web.Application) -> web.AppRunner:
    """A set-up AppRunner without access log whose stop does not wait for hung handlers."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)  # hung handlers must not delay a stop
    await runner.setup()
    return runner


def loopback_socket(port: int = 0) -> socket.socket:
    """A socket bound to 127.0.0.1 (port 0: any free port), for an aiohttp SockSite."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock
