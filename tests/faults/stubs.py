"""Loopback stand-ins for what moto cannot do: an AWS front that forwards to moto until told to throttle, fail
or answer garbage, a credentials endpoint that can answer garbage, and task-role keys with distinctive values.

The agent reaches them through the standard variables (AWS_ENDPOINT_URL, AWS_CONTAINER_CREDENTIALS_FULL_URI).
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiohttp import ClientSession, web

from agent.sandbox.aws import Keys, loopback_socket
from tests.faults.hygiene import distinctive
from tests.support.aws import ACCOUNT, Moto

_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "upgrade", "te"}
)
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
HTML = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"


@dataclass(frozen=True, slots=True)
class Answer:
    """What the front answers for one service instead of forwarding: an AWS error or a malformed body."""

    kind: str  # "error", "not_json", "empty", "truncated", "wrong_content_type", "html_error"
    code: str = ""
    status: int = 400


def error(code: str, status: int = 400) -> Answer:
    return Answer("error", code, status)


class AwsFront:
    """AWS_ENDPOINT_URL for the agent: forwards every request to moto (signatures stay valid: the Host header is
    passed on as signed) unless an Answer is set for the request's service."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.answers: dict[str, Answer] = {}  # service (sts, secretsmanager, ...) or "*" -> Answer
        self.calls: Counter[tuple[str, str]] = Counter()  # (service, how it was answered)
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None

    def answer(self, answers: Mapping[str, Answer]) -> None:
        """From now on answer these services (or "*": all) as given; others are still forwarded."""
        self.answers = dict(answers)

    def forward(self) -> None:
        """Forward everything to moto again."""
        self.answers = {}

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        sock = loopback_socket()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        await web.SockSite(self._runner, sock).start()
        self._session = ClientSession(auto_decompress=False)
        return self.url

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        match = _SCOPE.search(request.headers.get("Authorization", ""))
        service = match.group(1) if match else "unknown"
        answer = self.answers.get(service) or self.answers.get("*")
        self.calls[(service, answer.kind if answer else "forwarded")] += 1
        if answer is not None and answer.kind == "error":
            return _aws_error(request, answer)
        if answer is not None and answer.kind in ("not_json", "empty", "html_error"):
            return _garbage(request, answer.kind)
        status, headers, payload = await self._forward(request, body)
        if answer is not None and answer.kind == "wrong_content_type":
            headers["Content-Type"] = "text/html; charset=utf-8"
        if answer is not None and answer.kind == "truncated":
            return await _truncated(request, status, headers, payload)
        return web.Response(status=status, body=payload, headers=headers)

    async def _forward(self, request: web.Request, body: bytes) -> tuple[int, dict[str, str], bytes]:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with self._session.request(
            request.method, self.upstream + request.path_qs, headers=headers, data=body, allow_redirects=False
        ) as reply:
            payload = await reply.read()
            kept = {k: v for k, v in reply.headers.items() if k.lower() not in _HOP_BY_HOP}
            return reply.status, kept, payload


def _json_protocol(request: web.Request) -> bool:
    return "X-Amz-Target" in request.headers


def _aws_error(request: web.Request, answer: Answer) -> web.Response:
    if _json_protocol(request):
        body = json.dumps({"__type": answer.code, "message": f"stubbed {answer.code}"})
        return web.Response(status=answer.status, text=body, content_type="application/x-amz-json-1.1")
    xml = (
        "<ErrorResponse><Error><Type>Sender</Type>"
        f"<Code>{answer.code}</Code><Message>stubbed {answer.code}</Message>"
        "</Error><RequestId>fault-suite</RequestId></ErrorResponse>"
    )
    return web.Response(status=answer.status, text=xml, content_type="text/xml")


def _garbage(request: web.Request, kind: str) -> web.Response:
    json_protocol = _json_protocol(request)
    if kind == "html_error":
        return web.Response(status=502, text=HTML, content_type="text/html")
    if kind == "not_json":
        return web.Response(
            status=200, text=HTML, content_type="application/x-amz-json-1.1" if json_protocol else "text/xml"
        )
    # "empty": well-formed, but without any of the fields the caller reads
    if json_protocol:
        return web.Response(status=200, text="{}", content_type="application/x-amz-json-1.1")
    xml = "<GetCallerIdentityResponse><GetCallerIdentityResult/></GetCallerIdentityResponse>"
    return web.Response(status=200, text=xml, content_type="text/xml")


async def _truncated(request: web.Request, status: int, headers: dict[str, str], payload: bytes) -> web.StreamResponse:
    """Announce the whole body, send half, and drop the connection."""
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = len(payload)
    await response.prepare(request)
    await response.write(payload[: len(payload) // 2])
    if request.transport is not None:
        request.transport.abort()
    return response


class CredentialsStub:
    """An ECS credentials endpoint that hands out `keys` correctly, or answers in one of the malformed ways."""

    path = "/v2/credentials/fault-suite"

    def __init__(self, keys: Keys) -> None:
        self.keys = keys
        self.kind = "ok"  # ok, not_json, missing_keys, truncated, wrong_content_type, html_error, bad_expiration
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get(self.path, self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        sock = loopback_socket()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}{self.path}"
        await web.SockSite(self._runner, sock).start()
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _document(self) -> dict[str, str]:
        expiration = self.keys.expiration or datetime.now(UTC) + timedelta(hours=1)
        return {
            "AccessKeyId": self.keys.access_key,
            "SecretAccessKey": self.keys.secret_key,
            "Token": self.keys.token or "",
            "Expiration": expiration.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/fault-suite",
        }

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        document = self._document()
        if self.kind == "not_json":
            return web.Response(status=200, text=HTML, content_type="application/json")
        if self.kind == "html_error":
            return web.Response(status=502, text=HTML, content_type="text/html")
        if self.kind == "missing_keys":
            document.pop("SecretAccessKey")
        if self.kind == "bad_expiration":
            document["Expiration"] = "next tuesday"
        text = json.dumps(document)
        if self.kind == "wrong_content_type":
            return web.Response(status=200, text=text, content_type="text/html")
        if self.kind == "truncated":
            return await _truncated(request, 200, {"Content-Type": "application/json"}, text.encode())
        return web.Response(status=200, text=text, content_type="application/json")


async def distinctive_task_role(moto: Moto, label: str) -> Keys:
    """Task-role credentials from moto whose secret key and session token are distinctive values.

    moto generates both at random; its STS backend is rewritten in place (it runs in this process), so the
    credentials really work against moto while their every character is ours.
    """
    from moto.sts.models import sts_backends

    keys = await moto.task_role_keys()
    secret = distinctive(f"AWS secret access key ({label})", 40)
    token = distinctive(f"AWS session token ({label})", 120)
    found = False
    for role in sts_backends[ACCOUNT]["aws"].assumed_roles:
        if role.access_key_id == keys.access_key:
            role.secret_access_key = role.access_key.secret_access_key = secret
            role.session_token = token
            found = True
    assert found, "moto's STS backend does not hold the role session just assumed"
    return Keys(keys.access_key, secret, token, keys.expiration)


def rejected_keys(label: str) -> Keys:
    """Well-formed temporary credentials no AWS (or moto) knows, with distinctive secret parts."""
    return Keys(
        "ASIA" + uuid.uuid4().hex[:16].upper(),
        distinctive(f"AWS secret access key ({label})", 40),
        distinctive(f"AWS session token ({label})", 120),
        datetime.now(UTC) + timedelta(hours=1),
    )
