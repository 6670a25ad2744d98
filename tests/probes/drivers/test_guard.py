"""agent/probes/drivers/guard.py: no answer of a database server may pass the cap, however it comes (one message
that claims a gigantic size, small ones that never end), on both drivers; answers are counted one request at a
time, so a kept connection never adds them up; nothing outside the agent's connect() is metered."""

from __future__ import annotations

import time
from collections.abc import Iterator

import asyncpg
import pytest
from pydantic import SecretStr

from agent.config.dsn import Engine, SslMode
from agent.config.models import TargetConfig
from agent.probes.base import Login, TargetState
from agent.probes.db import DatabaseProbe
from agent.probes.drivers import mysql, pg
from agent.probes.drivers.guard import DB_ANSWER_BYTES, MeteredAnswers
from agent.probes.runner import run_probe
from agent.shared.answers import AnswerTooLarge
from agent.shared.reasons import Reason
from tests.faults.hostile.answers import BUILDERS, Peer
from tests.faults.hostile.wire import Hostility
from tests.support.databases import MySqlAdmin, PgAdmin, Server, assert_no_secret, random_password, target_for
from tests.support.hostile_peer import HostilePeer

TIMEOUT = 2.0
CANARY = "~GUARDcanary-password"


@pytest.fixture
def front() -> Iterator[HostilePeer]:
    peer = HostilePeer().start()
    try:
        yield peer
    finally:
        peer.close()


def through(front: HostilePeer, engine: Engine) -> TargetConfig:
    server = Server(engine, "127.0.0.1", front.port, "x", "", "postgres" if engine is Engine.POSTGRESQL else None)
    return target_for(server, "eha", password=SecretStr(CANARY), sslmode=SslMode.PREFER)


HOSTILE = [
    (Peer.PG_GREETING, Hostility.HUGE),
    (Peer.PG_GREETING, Hostility.ENDLESS),
    (Peer.PG_ERROR, Hostility.HUGE),
    (Peer.PG_ERROR, Hostility.ENDLESS),
    (Peer.MYSQL_GREETING, Hostility.HUGE),
    (Peer.MYSQL_GREETING, Hostility.ENDLESS),
    (Peer.MYSQL_ERROR, Hostility.HUGE),
    (Peer.MYSQL_ERROR, Hostility.ENDLESS),
]


@pytest.mark.parametrize("case", HOSTILE, ids=lambda c: f"{c[0].name.lower()}-{c[1]}")
async def test_a_gigantic_or_endless_answer_is_server_answer_too_large_at_once(
    front: HostilePeer, case: tuple[Peer, Hostility]
) -> None:
    peer, hostility = case
    front.turn(BUILDERS[peer](hostility, CANARY))
    engine = Engine.POSTGRESQL if peer.name.startswith("PG") else Engine.MYSQL
    started = time.monotonic()
    result = await run_probe(DatabaseProbe(through(front, engine), TargetState(), timeout=TIMEOUT), TIMEOUT)
    took = time.monotonic() - started
    assert (result.reason, result.code) == (Reason.SERVER, "db:answer_too_large"), result.message
    assert took < TIMEOUT / 2, f"{took:.2f}s: the cap, not the timeout, ended it"
    assert f"{DB_ANSWER_BYTES // 1024} KiB" in result.message
    assert "really is your" in result.hint
    assert_no_secret(result, CANARY)


async def test_asyncpg_builds_its_protocol_from_the_guards_subclass(front: HostilePeer) -> None:
    """The name the agent replaces is the one asyncpg's connect looks up (asyncpg.connect_utils), and the class
    there counts answers."""
    import asyncpg.connect_utils
    import asyncpg.protocol

    front.turn(BUILDERS[Peer.PG_GREETING](Hostility.ENDLESS, CANARY))
    await run_probe(DatabaseProbe(through(front, Engine.POSTGRESQL), TargetState(), timeout=TIMEOUT), TIMEOUT)
    assert asyncpg.connect_utils.protocol is asyncpg.protocol
    assert issubclass(asyncpg.protocol.Protocol, MeteredAnswers)


async def test_pg_answers_are_counted_per_request_on_a_kept_connection(pg_admin: PgAdmin) -> None:
    password = random_password()
    user = await pg_admin.role(password)
    target = target_for(pg_admin.server, user, password=SecretStr(password), database="postgres")
    conn = await pg.connect(
        target, Login(user, SecretStr(password), "static"), context=None, connect_timeout=TIMEOUT, on_step=_ignore
    )
    try:
        near = DB_ANSWER_BYTES * 3 // 4
        for _ in range(4):  # more than the cap in all, each answer under it
            assert len(await conn._raw.fetchval(f"SELECT repeat('x', {near})")) == near
        with pytest.raises(asyncpg.ConnectionDoesNotExistError) as caught:
            await conn._raw.fetchval(f"SELECT repeat('x', {DB_ANSWER_BYTES * 2})")
        assert pg.classify(caught.value) is not None
        assert pg.classify(caught.value).code == "db:answer_too_large"  # type: ignore[union-attr]
    finally:
        conn.terminate()


async def test_asyncpg_connections_the_agent_did_not_open_are_not_metered(pg_admin: PgAdmin) -> None:
    server = pg_admin.server
    raw = await asyncpg.connect(
        host=server.host, port=server.port, user=server.admin_user, password=server.admin_password or None,
        database=server.admin_database or "postgres", ssl=False,
    )  # fmt: skip
    try:
        assert len(await raw.fetchval(f"SELECT repeat('x', {DB_ANSWER_BYTES * 4})")) == DB_ANSWER_BYTES * 4
    finally:
        await raw.close()


async def test_mysql_answers_are_counted_per_request_and_a_claim_past_the_cap_is_refused(
    mysql_admin: MySqlAdmin,
) -> None:
    password = random_password()
    user = await mysql_admin.user(password)
    target = target_for(mysql_admin.server, user, password=SecretStr(password))
    conn = await mysql.connect(
        target, Login(user, SecretStr(password), "static"), context=None, connect_timeout=TIMEOUT, on_step=_ignore
    )
    try:
        near = DB_ANSWER_BYTES * 3 // 4
        for _ in range(4):
            async with conn._raw.cursor() as cursor:
                await cursor.execute(f"SELECT REPEAT('x', {near})")
                assert len((await cursor.fetchone())[0]) == near
        with pytest.raises(AnswerTooLarge) as caught:
            async with conn._raw.cursor() as cursor:
                await cursor.execute(f"SELECT REPEAT('x', {DB_ANSWER_BYTES * 2})")
        assert caught.value.claimed is not None and caught.value.claimed > DB_ANSWER_BYTES
        assert mysql.classify(caught.value).code == "db:answer_too_large"  # type: ignore[union-attr]
    finally:
        conn.terminate()


async def test_a_greeting_that_is_not_handshake_v10_is_not_a_mysql_server(front: HostilePeer) -> None:
    """The guard reads it as `mysql:protocol`; what answers at the port is then looked at (drivers/wire.py)."""
    front.turn(BUILDERS[Peer.MYSQL_GREETING](Hostility.GARBAGE, CANARY))
    result = await run_probe(DatabaseProbe(through(front, Engine.MYSQL), TargetState(), timeout=TIMEOUT), TIMEOUT)
    assert (result.reason, result.code) == (Reason.CONFIG, "db:wrong_server"), result.message
    assert "does not speak MySQL" in result.message


def _ignore(_step: str) -> None:
    """The steps a connect reports (the probe keeps them for its messages)."""
