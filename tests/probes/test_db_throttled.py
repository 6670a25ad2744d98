"""RDS Proxy's throttling answers, spoken over the real PostgreSQL and MySQL protocols by a front that forwards to
a real server until told to refuse (tests/support/protocol_front.py): throttled, scope shared, and never taken
for a rejected password (no secret refetch, no AWSPENDING read)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from agent.config.dsn import SslMode
from agent.config.models import TargetConfig
from agent.probes.base import ProbeResult, TargetState
from agent.probes.db import DatabaseProbe
from agent.probes.runner import run_probe
from agent.shared.reasons import Reason, Scope
from tests.support.databases import MySqlAdmin, PgAdmin, Server, assert_no_secret, random_password, target_for
from tests.support.protocol_front import ProtocolFront, mysql_error, pg_error

TIMEOUT = 3.0
IAM_COMPETING = "The IAM authentication failed because of too many competing requests."
PROXY_RATE = "Rate of connection to proxy exceeded 2000."


@pytest.fixture
async def pg_front(pg_server: Server) -> AsyncIterator[ProtocolFront]:
    front = await ProtocolFront(pg_server.host, pg_server.port).start()
    try:
        yield front
    finally:
        await front.close()


@pytest.fixture
async def mysql_front(mysql_server: Server) -> AsyncIterator[ProtocolFront]:
    front = await ProtocolFront(mysql_server.host, mysql_server.port).start()
    try:
        yield front
    finally:
        await front.close()


async def run(target: TargetConfig, state: TargetState, refetches: list[int]) -> ProbeResult:
    async def refresh() -> None:
        refetches.append(1)

    probe = DatabaseProbe(target, state, timeout=TIMEOUT, refresh_secret=refresh)
    return await run_probe(probe, TIMEOUT)


@pytest.mark.parametrize(("sqlstate", "text"), [("28000", IAM_COMPETING), ("53300", PROXY_RATE)])
async def test_postgres_proxy_throttling_is_throttled_and_shared(
    pg_admin: PgAdmin, pg_front: ProtocolFront, sqlstate: str, text: str
) -> None:
    """After an SSLRequest answered 'N', the startup message gets a FATAL ErrorResponse with the proxy's text."""
    password = random_password()
    user = await pg_admin.role(password)
    server = Server(pg_admin.server.engine, "127.0.0.1", pg_front.port, "", "", None)
    target = target_for(server, None, database="postgres", sslmode=SslMode.PREFER, secret_id="orders/db")
    state = TargetState(secret_user=user, secret_password=SecretStr(password))
    refetches: list[int] = []
    assert (await run(target, state, refetches)).ok  # forwarded to the real server first

    pg_front.refuse(pg_error(sqlstate, text))
    result = await run(target, state, refetches)
    assert (result.reason, result.code, result.scope) == (Reason.THROTTLED, "pg:throttled", Scope.SHARED)
    assert text in result.message and f"SQLSTATE {sqlstate}" in result.message
    assert "200 new IAM-authenticated connections per second" in result.hint and "backs off" in result.hint
    assert refetches == [], "a throttled login says nothing about the password: no secret refetch"
    assert pg_front.answered >= 2  # the TCP reachability check, then the login
    assert_no_secret(result, password)


@pytest.mark.parametrize("text", ["IAM authentication rate limit exceeded", "Connections rate limit exceeded (500)"])
async def test_mysql_proxy_throttling_is_throttled_and_shared(
    mysql_admin: MySqlAdmin, mysql_front: ProtocolFront, text: str
) -> None:
    """After the greeting and the client's handshake response, an ERR packet 1040 with the proxy's text."""
    password = random_password()
    user = await mysql_admin.user(password)
    server = Server(mysql_admin.server.engine, "127.0.0.1", mysql_front.port, "", "", None)
    target = target_for(server, user, database=None, sslmode=SslMode.PREFER, password=SecretStr(password))
    refetches: list[int] = []
    assert (await run(target, TargetState(), refetches)).ok, "forwarded to the real server first"

    mysql_front.refuse(mysql_error(1040, text))
    result = await run(target, TargetState(), refetches)
    assert (result.reason, result.code, result.scope) == (Reason.THROTTLED, "mysql:1040:throttled", Scope.SHARED)
    assert text in result.message and "shared by every client" in result.hint
    assert mysql_front.answered == 1
    assert_no_secret(result, password)
