"""No password or token ever reaches a server without TLS in a form it can read, whatever the sslmode.

Stand-in servers (tests/support/auth_standins.py) refuse TLS and ask for the password in cleartext
(AuthenticationCleartextPassword; MySQL's mysql_clear_password, in the greeting or by an auth switch) or
RSA-encrypted to a key they send themselves (caching_sha2_password full authentication, sha256_password); they keep
every byte they are sent (RSA decrypted), and the canary must not be among them. The same stand-ins, against the
drivers without the agent's guards, do receive it: the guards are what stop it.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from pathlib import Path

import aiomysql
import asyncpg
import asyncpg.protocol
import pytest
from pydantic import SecretStr

from agent.config.dsn import Engine, SslMode
from agent.config.models import TargetConfig
from agent.probes.base import ProbeResult, TargetState
from agent.probes.db import DatabaseProbe
from agent.probes.drivers.pg_auth import GuardedProtocol, install
from agent.probes.runner import run_probe
from agent.shared.reasons import Reason
from tests.support.auth_standins import (
    MySqlStandIn,
    PgStandIn,
    RsaKey,
    pg_cleartext,
    pg_md5,
    pg_notice,
    self_signed,
)
from tests.support.databases import Server, assert_no_secret, random_password, target_for

TIMEOUT = 3.0
PLAINTEXT = [SslMode.DISABLE, SslMode.PREFER]


def server(engine: Engine, port: int) -> Server:
    return Server(engine, "127.0.0.1", port, "admin", "", "postgres" if engine is Engine.POSTGRESQL else None)


async def login(engine: Engine, port: int, canary: str, mode: SslMode, source: str) -> ProbeResult:
    """One `check` run of the db probe, logging in with `canary` as a static password or an IAM token."""
    target: TargetConfig
    if source == "iam":  # built directly: configuration refuses IAM below sslmode=require, the probe must too
        target = target_for(server(engine, port), "app", iam_auth=True, region="eu-west-1", sslmode=mode)
        state = TargetState(token=SecretStr(canary))
    else:
        target = target_for(server(engine, port), "app", password=SecretStr(canary), sslmode=mode)
        state = TargetState()
    return await run_probe(DatabaseProbe(target, state, timeout=TIMEOUT), TIMEOUT)


def assert_refused(result: ProbeResult, code: str, request: str, canary: str, received: bytes) -> None:
    assert (result.reason, result.code) == (Reason.TLS, code), result.message
    assert "without TLS" in result.message and "not sent" in result.message
    assert request in result.hint
    assert canary.encode() not in received, "the password reached the server"
    assert_no_secret(result, canary)


@pytest.fixture(scope="module")
async def rsa(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RsaKey]:
    yield await RsaKey.make(tmp_path_factory.mktemp("rsa"))


# -- PostgreSQL ----------------------------------------------------------------------------------------------

PG_REQUESTS = {
    "at once": (pg_cleartext(), 0),
    "a byte at a time": (pg_cleartext(), 1),
    "after a notice": (pg_notice("hello") + pg_cleartext(), 3),
}


@pytest.mark.parametrize("source", ["static", "iam"])
@pytest.mark.parametrize("mode", PLAINTEXT)
@pytest.mark.parametrize("how", list(PG_REQUESTS))
async def test_pg_cleartext_request_without_tls_is_refused(how: str, mode: SslMode, source: str) -> None:
    request, chunk = PG_REQUESTS[how]
    canary = random_password()
    async with PgStandIn(request, chunk=chunk) as standin:
        result = await login(Engine.POSTGRESQL, standin.port, canary, mode, source)
    assert_refused(result, "pg:cleartext_password", "AuthenticationCleartextPassword", canary, standin.everything)
    assert standin.received and standin.everything == b""  # not a byte after the StartupMessage


async def test_pg_without_the_guard_the_standin_gets_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    """asyncpg itself answers a cleartext request on a plaintext connection: the guard is what stops it."""
    canary = random_password()
    monkeypatch.setattr(asyncpg.protocol, "Protocol", asyncpg.protocol.protocol.Protocol)
    async with PgStandIn(pg_cleartext()) as standin:
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(host="127.0.0.1", port=standin.port, user="app", password=canary, ssl=False)
    assert canary.encode() in standin.everything


async def test_pg_guard_is_the_protocol_asyncpg_builds(pg_server: Server) -> None:
    """After install(), asyncpg.connect builds its protocol from the guard: the name it looks up is ours."""
    install()
    raw = await asyncpg.connect(
        host=pg_server.host, port=pg_server.port, user=pg_server.admin_user, database="postgres", ssl=False
    )
    try:
        assert isinstance(raw._protocol, GuardedProtocol)
        assert await raw.fetchval("SELECT 1") == 1  # and it works as asyncpg's own, after authentication too
    finally:
        await raw.close()


async def test_pg_md5_is_answered_with_a_salted_hash_never_the_password() -> None:
    """MD5 sends md5(md5(password + user) + salt): not the password, so it is answered (docs/configuration.md, TLS)."""
    canary = random_password()
    async with PgStandIn(pg_md5()) as standin:
        result = await login(Engine.POSTGRESQL, standin.port, canary, SslMode.DISABLE, "static")
    assert (result.reason, result.code) == (Reason.AUTH, "pg:28P01")
    assert standin.everything.startswith(b"p") and b"md5" in standin.everything
    assert canary.encode() not in standin.everything


async def test_pg_cleartext_request_over_tls_is_answered(tmp_path: Path) -> None:
    """With TLS up (sslmode=require), a cleartext request is what RDS IAM auth makes: the token goes, encrypted."""
    context, _ = await self_signed(tmp_path)
    canary = random_password()
    async with PgStandIn(pg_cleartext(), tls=context) as standin:
        result = await login(Engine.POSTGRESQL, standin.port, canary, SslMode.REQUIRE, "iam")
    assert (result.reason, result.code) == (Reason.AUTH, "pg:28P01")
    assert canary.encode() in standin.everything  # decrypted by the stand-in's own TLS


async def test_pg_message_shorter_than_its_own_header_is_server_and_gets_nothing() -> None:
    """The guard frames the server's messages as asyncpg does; one it cannot frame ends the login (no desync in
    which asyncpg would see a request the guard did not)."""
    canary = random_password()
    async with PgStandIn(b"R" + struct.pack("!i", 2) + struct.pack("!ii", 8, 3)) as standin:
        result = await login(Engine.POSTGRESQL, standin.port, canary, SslMode.DISABLE, "static")
    assert (result.reason, result.code) == (Reason.SERVER, "pg:protocol"), result.message
    assert standin.everything == b""


@pytest.mark.parametrize("source", ["static", "iam"])
async def test_pg_tls_required_and_refused_sends_nothing(source: str) -> None:
    canary = random_password()
    async with PgStandIn(pg_cleartext()) as standin:
        result = await login(Engine.POSTGRESQL, standin.port, canary, SslMode.REQUIRE, source)
    assert (result.reason, result.code) == (Reason.TLS, "db:tls_not_negotiated")
    assert standin.everything == b"" and standin.received  # it connected, and was sent nothing but the SSLRequest


# -- MySQL ---------------------------------------------------------------------------------------------------

MYSQL_CASES = {
    # name: (greeting plugin, then, code, what the hint names)
    "greeting names mysql_clear_password": ("mysql_clear_password", "", "mysql:clear_password", "mysql_clear_password"),
    "auth switch to mysql_clear_password": (
        "mysql_native_password",
        "switch",
        "mysql:clear_password",
        "mysql_clear_password",
    ),
    "caching_sha2_password full authentication": (
        "caching_sha2_password",
        "full_auth",
        "mysql:server_public_key",
        "caching_sha2_password full authentication",
    ),
    "sha256_password": ("sha256_password", "", "mysql:server_public_key", "sha256_password"),
}


# Under sslmode=disable, which asks for no TLS, the RSA exchange goes on (tests/probes/test_db_mysql_sha2.py).
REFUSED = [
    (case, mode, source)
    for case in MYSQL_CASES
    for mode in PLAINTEXT
    for source in ("static", "iam")
    if not (MYSQL_CASES[case][2] == "mysql:server_public_key" and mode is SslMode.DISABLE)
]


@pytest.mark.parametrize(("case", "mode", "source"), REFUSED)
async def test_mysql_readable_password_request_without_tls_is_refused(
    case: str, mode: SslMode, source: str, rsa: RsaKey
) -> None:
    plugin, then, code, request = MYSQL_CASES[case]
    canary = random_password()
    async with MySqlStandIn(plugin, then, rsa) as standin:
        result = await login(Engine.MYSQL, standin.port, canary, mode, source)
    assert_refused(result, code, request, canary, standin.everything)
    assert len(standin.received) == 1  # one connection, no retry elsewhere


@pytest.mark.parametrize("case", list(MYSQL_CASES))
async def test_mysql_without_the_guard_the_standin_gets_the_password(case: str, rsa: RsaKey) -> None:
    """aiomysql itself sends it (RSA-encrypted ones decrypted by the stand-in): the guard is what stops it."""
    plugin, then, _, _ = MYSQL_CASES[case]
    canary = random_password()
    async with MySqlStandIn(plugin, then, rsa) as standin:
        with pytest.raises(aiomysql.OperationalError):
            await aiomysql.connect(host="127.0.0.1", port=standin.port, user="app", password=canary)
    assert canary.encode() in standin.everything


@pytest.mark.parametrize("source", ["static", "iam"])
async def test_mysql_tls_required_and_not_offered_sends_nothing(source: str, rsa: RsaKey) -> None:
    canary = random_password()
    async with MySqlStandIn("mysql_clear_password", "", rsa) as standin:
        result = await login(Engine.MYSQL, standin.port, canary, SslMode.REQUIRE, source)
    assert (result.reason, result.code) == (Reason.TLS, "db:tls_not_negotiated")
    assert standin.everything == b""
