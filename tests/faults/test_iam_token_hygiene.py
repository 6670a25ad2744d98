"""An RDS IAM token never leaves the agent: not whole, not its signature, not the session token inside it.

One agent, two IAM targets with the task's distinctive credentials. `rds` logs in to the suite's real PostgreSQL,
which has no rds_iam and rejects the token (28P01: a matrix row). `tap` logs in to a minimal PostgreSQL stand-in
that speaks TLS (sslmode=require: an IAM token never travels without it) and asks for the password in cleartext, as
RDS does, and keeps what it receives: the exact token the agent signed. The test also signs the token for every
second of the run with the agent's own aiobotocore code path and the signing clock pinned; the captured token must
be among those candidates (so the method is right), and no candidate of either target, nor its signature, may appear
in anything the agent said.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import botocore.auth
import pytest
import yaml

from agent.sandbox.aws import CredentialsEndpoint, Keys, moto_client
from agent.sandbox.postgres import PostgresSandbox
from tests.faults.cadence import FAST, bounds
from tests.faults.harness import live_agent
from tests.faults.hygiene import HEX64, distinctive, signature_leaks
from tests.faults.scenario import Expect, record_static
from tests.faults.servers import PgControl
from tests.faults.stubs import distinctive_task_role
from tests.support.auth_standins import self_signed
from tests.support.aws import REGION, Moto

SSL_REQUEST = 80877103


class PasswordTap:
    """Speaks just enough of the PostgreSQL protocol, over TLS, to be sent a cleartext password, keep it, and
    refuse."""

    def __init__(self, tls: ssl.SSLContext) -> None:
        self.tls = tls
        self.passwords: list[str] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, struct.error):
            length, code = struct.unpack("!ii", await reader.readexactly(8))
            if code == SSL_REQUEST:
                writer.write(b"S")
                await writer.start_tls(self.tls)
                length, code = struct.unpack("!ii", await reader.readexactly(8))
            await reader.readexactly(length - 8)  # the startup parameters
            writer.write(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
            kind, length = struct.unpack("!ci", await reader.readexactly(5))
            if kind == b"p":
                self.passwords.append((await reader.readexactly(length - 4)).rstrip(b"\x00").decode())
            fields = b"SFATAL\x00C28P01\x00Mpassword authentication failed\x00\x00"
            writer.write(b"E" + struct.pack("!i", len(fields) + 4) + fields)
            await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def password_tap(directory: Path) -> AsyncIterator[PasswordTap]:
    tap = PasswordTap((await self_signed(directory))[0])
    await tap.start()
    try:
        yield tap
    finally:
        await tap.stop()


async def candidate_tokens(keys: Keys, host: str, port: int, user: str, start: float, end: float) -> list[str]:
    """The token the agent would have signed at each whole second from start to end (wall clock)."""
    tokens = []
    async with moto_client("http://127.0.0.1:9", "rds", keys, REGION) as rds:  # signing is local: no request
        with pytest.MonkeyPatch.context() as patch:
            for second in range(int(start) - 1, int(end) + 2):
                moment = datetime.fromtimestamp(second, UTC).replace(tzinfo=None)
                patch.setattr(botocore.auth, "get_current_datetime", lambda moment=moment: moment)
                tokens.append(
                    await rds.generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user, Region=REGION)
                )
    return tokens


def signature(token: str) -> str:
    return parse_qs(urlsplit("//" + token).query)["X-Amz-Signature"][0]


async def test_iam_token_and_its_signature_never_appear_in_any_output(
    moto: Moto, fault_cluster: PostgresSandbox, pg_control: PgControl, tmp_path: Path
) -> None:
    keys = await distinctive_task_role(moto, "IAM auth")
    endpoint = CredentialsEndpoint(keys, role_arn=moto.identities.role_arn)
    await endpoint.start()
    role = await pg_control.role(distinctive("PostgreSQL password (IAM user)"))
    host, port = fault_cluster.host, fault_cluster.port
    iam = {"enabled": True, "region": REGION}
    problems: list[str] = []
    sample = None
    want = Expect("db", "rds", "auth", ("pg:28P01",), "not_ready")
    try:
        async with password_tap(tmp_path) as tap:
            connections = {
                "rds": {"dsn": f"postgresql://{role}@{host}:{port}/postgres?sslmode=require", "aws_iam_auth": iam},
                "tap": {
                    "dsn": f"postgresql://{role}@127.0.0.1:{tap.port}/postgres?sslmode=require",
                    "aws_iam_auth": iam,
                },
            }
            config = tmp_path / "agent.yaml"
            await asyncio.to_thread(config.write_text, yaml.safe_dump({"database": {"connections": connections}}))
            env = {**FAST, "AWS_ENDPOINT_URL": moto.url, "AWS_CONTAINER_CREDENTIALS_FULL_URI": endpoint.url}
            started = time.time()
            async with live_agent("iam", env, "--config", str(config)) as agent:
                try:
                    sample = await agent.wait_for(want.matches, bounds().detect)
                except AssertionError as exc:
                    problems.append(str(exc))
                tokens_ok = [p["ok"] for p in (await agent.status())["probes"] if p["probe"] == "token"]
                if tokens_ok != [True, True]:
                    problems.append(f"the tokens were not both signed: {tokens_ok}")
                await agent.metrics()
                await agent.get("/")
            ended = time.time()
    finally:
        await endpoint.stop()
        await pg_control.drop_role(role)
    record_static(agent, "IAM token rejected by the database (no rds_iam grant)", want, sample, problems)
    assert not problems, "; ".join(problems)

    assert tap.passwords, "the stand-in was never sent a password"
    sent = set(tap.passwords)
    rds_tokens = await candidate_tokens(keys, host, port, role, started, ended)
    tap_tokens = await candidate_tokens(keys, "127.0.0.1", tap.port, role, started, ended)
    assert sent <= set(tap_tokens), "the candidate tokens do not reproduce what the agent really sent"
    tokens = rds_tokens + tap_tokens
    text = agent.output() + "\n".join(body.decode(errors="replace") for body in agent.bodies)
    assert not [t for t in tokens if t in text], "an IAM token appears in the agent's output"
    assert not signature_leaks(text, [signature(t) for t in tokens]), "a token's signature appears in the output"
    assert not HEX64.search(text), "something shaped like a SigV4 signature appears in the agent's output"
    assert keys.token and keys.token[:4] in next(iter(sent)), "the token carries the session token (prefix-checked)"
