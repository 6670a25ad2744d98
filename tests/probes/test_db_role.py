"""Writer or reader (AGENT_DB_EXPECT_ROLE) against a real primary and a real hot standby (pg_basebackup -R): the
mismatch codes, their scope and hint, the facts on /metrics and /status, and no connection kept to the wrong role."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from pydantic import SecretStr

from agent.config.dsn import Engine
from agent.config.models import ExpectRole, TargetConfig
from agent.outputs.metrics import build_registry, render
from agent.probes.base import ProbeResult, TargetState
from agent.probes.db import DatabaseProbe
from agent.probes.drivers import pg
from agent.probes.runner import run_probe
from agent.runtime.state import AgentState
from agent.sandbox.postgres import PostgresSandbox
from agent.shared.counters import COUNTERS
from agent.shared.reasons import Reason, Scope
from tests.outputs.test_metrics import parse, value
from tests.support.databases import SETTLE_SECONDS, Server, target_for
from tests.support.http import fetch, serve
from tests.support.resolver import sitecustomize as resolver
from tests.support.results import make_config
from tests.support.standby import STANDBY_HOST, Pair

TIMEOUT = 5.0
FAILOVER_NAME = "orders.cluster-hold.eha.test"  # moved between the standby and the primary by the hosts file


def target(pg_pair: Pair, cluster: PostgresSandbox, role: ExpectRole) -> TargetConfig:
    server = Server(Engine.POSTGRESQL, cluster.host, cluster.port, "postgres", "", "postgres")
    return target_for(server, pg_pair.user, password=SecretStr(pg_pair.password), expect_role=role)


async def run(probe: DatabaseProbe) -> ProbeResult:
    return await run_probe(probe, TIMEOUT)


def probe_for(config: TargetConfig, *, keep: bool = False) -> DatabaseProbe:
    return DatabaseProbe(config, TargetState(), timeout=TIMEOUT, keep_connection=keep, reauth_seconds=300)


@pytest.fixture
async def standby_admin(pg_pair: Pair) -> AsyncIterator[asyncpg.Connection]:
    """The trusted admin on the standby (hot standby sessions may read pg_stat_activity)."""
    conn = await asyncpg.connect(host=STANDBY_HOST, port=pg_pair.standby.port, user="postgres", database="postgres")
    try:
        yield conn
    finally:
        await conn.close()


async def test_a_writer_target_at_a_hot_standby_is_read_only_shared_naming_the_address(pg_pair: Pair) -> None:
    """`db:read_only`, reason server, scope shared: the message, hint and details all name 127.0.0.2."""
    result = await run(probe_for(target(pg_pair, pg_pair.standby, ExpectRole.WRITER)))
    assert (result.ok, result.reason, result.code, result.scope) == (False, Reason.SERVER, "db:read_only", Scope.SHARED)
    assert result.message == (
        f"expected a writer (expect_role=writer), but {STANDBY_HOST} resolved to {STANDBY_HOST}, where"
        " pg_is_in_recovery() is true: a hot standby"
    )
    assert result.hint.startswith(f"{STANDBY_HOST} resolved to {STANDBY_HOST}, and the server there is read-only")
    assert "DNS TTL of 5 s" in result.hint and "maximum connection lifetime" in result.hint
    assert (result.details["read_only"], result.details["resolved_address"]) == ("yes", STANDBY_HOST)


async def test_a_reader_target_at_the_primary_is_not_a_reader(pg_pair: Pair) -> None:
    result = await run(probe_for(target(pg_pair, pg_pair.primary, ExpectRole.READER)))
    assert (result.reason, result.code, result.scope) == (Reason.SERVER, "db:not_a_reader", Scope.SHARED)
    assert "pg_is_in_recovery() is false and transaction_read_only is off" in result.message
    assert result.hint.startswith("127.0.0.1 resolved to 127.0.0.1, and the server there accepts writes")
    assert result.details["read_only"] == "no"


@pytest.mark.parametrize(
    ("server", "role", "read_only"),
    [
        ("primary", ExpectRole.ANY, "no"),
        ("standby", ExpectRole.ANY, "yes"),
        ("primary", ExpectRole.WRITER, "no"),
        ("standby", ExpectRole.READER, "yes"),
    ],
)
async def test_a_matching_or_any_role_passes_and_reports_read_only(
    pg_pair: Pair, server: str, role: ExpectRole, read_only: str
) -> None:
    cluster = pg_pair.primary if server == "primary" else pg_pair.standby
    result = await run(probe_for(target(pg_pair, cluster, role)))
    assert result.ok, result.message
    assert (result.details["read_only"], result.details["resolved_address"]) == (read_only, cluster.host)


async def test_a_mismatch_keeps_no_connection_and_logs_in_anew_when_the_fresh_login_is_due(
    pg_pair: Pair, standby_admin: asyncpg.Connection
) -> None:
    """In continuous mode the connection to the wrong role is closed, never kept; once AGENT_DB_REAUTH_SECONDS has
    passed, the next run is a fresh login even though the address did not change."""
    config = target(pg_pair, pg_pair.standby, ExpectRole.WRITER)
    probe = DatabaseProbe(config, TargetState(), timeout=TIMEOUT, keep_connection=True, reauth_seconds=0.2)
    for attempt in (1, 2):
        result = await run(probe)
        assert result.code == "db:read_only"
        assert probe._kept is None
        assert COUNTERS.db_connections_opened[config.name] == attempt
        await asyncio.sleep(0.3)
    assert await _settled(standby_admin, pg_pair.user) == []


async def test_after_a_mismatch_logins_wait_for_the_name_to_resolve_elsewhere(
    pg_pair: Pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """serve: while the name still resolves to the standby, a run repeats `db:read_only` after a DNS lookup alone
    (no login: 10,000 tasks would otherwise log in to the old writer every interval); the first run after the name
    resolves to the writer logs in and passes."""
    hosts = tmp_path / "hosts.json"
    await asyncio.to_thread(hosts.write_text, json.dumps({FAILOVER_NAME: STANDBY_HOST}))
    monkeypatch.setitem(resolver._files, "hosts", str(hosts))
    server = Server(Engine.POSTGRESQL, FAILOVER_NAME, pg_pair.standby.port, "postgres", "", "postgres")
    config = target_for(server, pg_pair.user, password=SecretStr(pg_pair.password), expect_role=ExpectRole.WRITER)
    probe = probe_for(config, keep=True)
    first, held = await run(probe), await run(probe)
    assert (first.code, held.code, held.scope) == ("db:read_only", "db:read_only", Scope.SHARED)
    assert f"{FAILOVER_NAME} still resolves to {STANDBY_HOST}: the agent logs in again as soon as it" in held.message
    assert COUNTERS.db_connections_opened[config.name] == 1
    await asyncio.to_thread(hosts.write_text, json.dumps({FAILOVER_NAME: "127.0.0.1"}))  # the endpoint moved
    fixed = await run(probe)
    assert fixed.ok, fixed.message
    assert COUNTERS.db_connections_opened[config.name] == 2
    await probe.close()


async def test_the_role_is_read_at_login_and_a_kept_connection_pings_select_1(
    pg_pair: Pair, standby_admin: asyncpg.Connection
) -> None:
    """Pings on the kept connection stay SELECT 1 (the server's own record of the last query); its runs carry
    the login's read_only and address."""
    config = target(pg_pair, pg_pair.standby, ExpectRole.ANY)
    probe = probe_for(config, keep=True)
    try:
        first = await run(probe)
        assert await _sessions(standby_admin, pg_pair.user) == [
            "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')"
        ]
        second = await run(probe)
        assert await _sessions(standby_admin, pg_pair.user) == ["SELECT 1"]
    finally:
        await probe.close()
    assert (first.details["connection"], second.details["connection"]) == ("new", "kept")
    assert second.details["read_only"] == "yes" and second.details["resolved_address"] == STANDBY_HOST
    assert COUNTERS.db_connections_opened[config.name] == 1


async def test_a_write_on_the_standby_is_classified_as_read_only(pg_pair: Pair) -> None:
    """SQLSTATE 25006, as the backend sees it after a failover, gets the same code and hint."""
    conn = await asyncpg.connect(host=STANDBY_HOST, port=pg_pair.standby.port, user="postgres", database="postgres")
    try:
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError) as raised:
            await conn.execute("CREATE TABLE eha_role_write (id int)")
    finally:
        await conn.close()
    failure = pg.classify(raised.value)
    assert failure is not None and (failure.reason, failure.code) == (Reason.SERVER, "db:read_only")
    hint = probe_for(target(pg_pair, pg_pair.standby, ExpectRole.ANY)).hint(failure)
    assert hint.startswith(f"{STANDBY_HOST} resolved to not known, and the server there is read-only")


async def test_metrics_and_status_show_the_standby_s_facts_after_a_mismatch(pg_pair: Pair) -> None:
    """health_agent_db_read_only is 1 and /status's database entry names the address, from the failed run."""
    config = target(pg_pair, pg_pair.standby, ExpectRole.WRITER)
    state = AgentState(make_config(targets=(config,)), [("db", config.name)])
    result = await run(probe_for(config))
    state.record(result)
    samples = parse(render(build_registry(state)).decode())
    assert value(samples, "health_agent_db_read_only", target=config.name) == 1
    async with serve(state) as base:
        status = (await fetch(f"{base}/status")).body
    (entry,) = [p for p in status["probes"] if p["probe"] == "db"]
    assert entry["code"] == "db:read_only" and entry["scope"] == "shared"
    assert entry["database"]["resolved_address"] == STANDBY_HOST and entry["database"]["read_only"] is True


async def _settled(admin: asyncpg.Connection, user: str) -> list[str]:
    """The user's sessions once none is left, or after SETTLE_SECONDS (a closed session ends asynchronously)."""
    loop = asyncio.get_running_loop()
    until = loop.time() + SETTLE_SECONDS
    while (found := await _sessions(admin, user)) and loop.time() < until:
        await asyncio.sleep(0.02)
    return found


async def _sessions(admin: asyncpg.Connection, user: str) -> list[str]:
    rows = await admin.fetch("SELECT query FROM pg_stat_activity WHERE usename = $1", user)
    return [str(row["query"]) for row in rows]
