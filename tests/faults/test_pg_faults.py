"""PostgreSQL faults against a running agent: each is classified (probe, reason, code), /ready follows the gate
policy, /health stays 200, and the agent is `ready` again within its success threshold once the fault clears.

Two agents: one logs in directly to the suite's own cluster (server-side faults: stop, credentials, database,
TLS, a killed session, DNS), one through a fault proxy (network faults and a full server).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass

import pytest

from agent.sandbox.postgres import PostgresSandbox
from tests.faults.cadence import FAST, REAUTH, SLACK, TIMEOUT, bounds
from tests.faults.harness import LiveAgent, live_agent
from tests.faults.hygiene import distinctive
from tests.faults.scenario import Bounds, Expect, Leaks, run_fault, run_masked
from tests.faults.servers import HostsFile, PgControl, literal
from tests.support.backend import Backend, Mode, backend
from tests.support.fault_proxy import Fault, FaultProxy, fault_proxy
from tests.support.hermetic import FAULTS_PG_HOST

HOST = FAULTS_PG_HOST  # resolves while the suite's hosts file lists it; declared not to resolve otherwise


@dataclass
class PgWorld:
    agent: LiveAgent
    role: str
    password: str
    database: str
    control: PgControl

    async def sessions(self) -> int:
        return len(await self.control.pids(self.role))

    def leaks(self) -> Leaks:
        return Leaks(self.sessions)


async def _world(
    control: PgControl, label: str, host: str, port: int, hosts: HostsFile | None, extra: Mapping[str, str] = {}
) -> AsyncIterator[PgWorld]:
    password = distinctive(f"PostgreSQL password ({label})")
    role = await control.role(password)
    database = await control.database(owner=role)
    env = {
        **FAST,
        "AGENT_DB_DSN": f"postgresql://{role}@{host}:{port}/{database}?sslmode=require",
        "AGENT_DB_PASSWORD": password,
        **extra,
    }
    try:
        async with live_agent(label, env, hosts_file=hosts.path if hosts else None) as agent:
            yield PgWorld(agent, role, password, database, control)
    finally:
        await control.drop_database(database)
        await control.drop_role(role)


@pytest.fixture(scope="module")
async def direct(
    fault_cluster: PostgresSandbox, pg_control: PgControl, hosts_file: HostsFile
) -> AsyncIterator[PgWorld]:
    """An agent logging in to the suite's cluster by a host name the test can make stop resolving."""
    hosts_file.set(HOST, fault_cluster.host)
    async for world in _world(pg_control, "pg-direct", HOST, fault_cluster.port, hosts_file):
        yield world


@pytest.fixture(scope="module")
def pg_fault_proxy(fault_cluster: PostgresSandbox) -> Iterator[FaultProxy]:
    with fault_proxy(fault_cluster.host, fault_cluster.port) as proxy:
        yield proxy


@pytest.fixture(scope="module")
async def proxied(pg_control: PgControl, pg_fault_proxy: FaultProxy) -> AsyncIterator[PgWorld]:
    """An agent logging in through the fault proxy."""
    async for world in _world(pg_control, "pg-proxied", "127.0.0.1", pg_fault_proxy.port, None):
        yield world


@pytest.fixture
async def spread(fault_cluster: PostgresSandbox, pg_control: PgControl) -> AsyncIterator[PgWorld]:
    """An agent that waits up to 3 s before logging in again after losing its kept connection; threshold 1, so
    the close event alone shows in the status (no draw of the delay can hide it)."""
    extra = {"AGENT_DB_RELOGIN_SPREAD_SECONDS": "3", "AGENT_FAILURE_THRESHOLD": "1"}
    async for world in _world(pg_control, "pg-spread", "127.0.0.1", fault_cluster.port, None, extra):
        yield world


@pytest.fixture
def stand_in_backend() -> Iterator[Backend]:
    with backend(Mode.ANSWER, 200) as stand_in:
        yield stand_in


@pytest.fixture
async def fronting(
    fault_cluster: PostgresSandbox, pg_control: PgControl, stand_in_backend: Backend
) -> AsyncIterator[PgWorld]:
    """An agent that also probes the backend it fronts (AGENT_APP_URL at the stand-in's /health)."""
    extra = {"AGENT_APP_URL": f"http://{stand_in_backend.address}/health"}
    async for world in _world(pg_control, "pg-fronting", "127.0.0.1", fault_cluster.port, None, extra):
        yield world


def expect(reason: str, *codes: str, status: str) -> Expect:
    return Expect("db", "default", reason, codes, status)


# -- server-side faults, direct --------------------------------------------------------------------------


async def test_server_stopped_is_network_degraded_then_recovers_on_restart(
    direct: PgWorld, fault_cluster: PostgresSandbox
) -> None:
    """A fast shutdown ends the kept session; logins are refused: a shared outage, so degraded (200)."""
    await run_fault(
        direct.agent,
        "PostgreSQL stopped, then started",
        expect("network", "db:refused", status="degraded"),
        inject=lambda: asyncio.to_thread(fault_cluster.stop),
        clear=lambda: asyncio.to_thread(fault_cluster.start),
        bounds=bounds(),
        leaks=direct.leaks(),
    )


async def test_name_that_stops_resolving_is_dns_degraded(direct: PgWorld, hosts_file: HostsFile) -> None:
    """The kept connection hides it until the next fresh login, which cannot resolve the host: dns."""

    async def inject() -> None:
        hosts_file.remove(HOST)

    async def clear() -> None:
        hosts_file.set(HOST, "127.0.0.1")

    await run_fault(
        direct.agent,
        "DSN host name stops resolving",
        expect("dns", "db:dns", status="degraded"),
        inject,
        clear,
        bounds(masked=REAUTH),
        direct.leaks(),
    )


async def test_password_changed_on_the_server_is_auth_not_ready(direct: PgWorld) -> None:
    """The incident: the password changes under a running task; the next fresh login is rejected (28P01)."""
    other = distinctive("PostgreSQL password (changed)")
    await run_fault(
        direct.agent,
        "PostgreSQL password changed on the server",
        expect("auth", "pg:28P01", status="not_ready"),
        inject=lambda: direct.control.execute(f"ALTER ROLE {direct.role} PASSWORD {literal(other)}"),
        clear=lambda: direct.control.execute(f"ALTER ROLE {direct.role} PASSWORD {literal(direct.password)}"),
        bounds=bounds(masked=REAUTH),
        leaks=direct.leaks(),
    )


async def test_user_dropped_is_auth_not_ready(direct: PgWorld) -> None:
    """PostgreSQL words an unknown user like a wrong password (28P01): auth, a task-local failure."""

    async def inject() -> None:
        await direct.control.execute(f"REASSIGN OWNED BY {direct.role} TO postgres")
        await direct.control.drop_role(direct.role)

    async def clear() -> None:
        await direct.control.role(direct.password, direct.role)

    await run_fault(
        direct.agent,
        "PostgreSQL user dropped",
        expect("auth", "pg:28P01", status="not_ready"),
        inject,
        clear,
        bounds(),
        direct.leaks(),
    )


async def test_database_dropped_is_config_not_ready(direct: PgWorld) -> None:
    """DROP DATABASE ... WITH (FORCE) ends the session; the login names a database that is gone (3D000)."""
    await run_fault(
        direct.agent,
        "PostgreSQL database dropped",
        expect("config", "pg:3D000", status="not_ready"),
        inject=lambda: direct.control.drop_database(direct.database),
        clear=lambda: direct.control.database(db=direct.database),
        bounds=bounds(),
        leaks=direct.leaks(),
    )


async def test_server_that_stops_offering_tls_is_tls_degraded(direct: PgWorld) -> None:
    """sslmode=require and the server turns ssl off: the next login is refused TLS, and no password is sent."""
    await run_fault(
        direct.agent,
        "TLS required by the agent, server stops offering TLS (ssl=off)",
        expect("tls", "db:tls_not_negotiated", status="degraded"),
        inject=lambda: direct.control.set_setting("ssl", "off"),
        clear=lambda: direct.control.set_setting("ssl", "on", reset=True),
        bounds=bounds(masked=REAUTH),
        leaks=direct.leaks(),
    )


async def test_kept_connection_terminated_by_the_server_is_absorbed(direct: PgWorld) -> None:
    """pg_terminate_backend on the agent's session: the next run logs in again in the same run; never a failure."""
    before = await direct.control.pids(direct.role)
    assert len(before) == 1, f"expected the one kept session, found {before}"

    async def proof() -> str | None:
        now = await direct.control.pids(direct.role)
        return f"new session (pid {before[0]} -> {now[0]})" if now and now != before else None

    await run_masked(
        direct.agent,
        "kept PostgreSQL session killed (pg_terminate_backend)",
        "absorbed: a fresh login in the same run, ready throughout",
        inject=lambda: direct.control.execute("SELECT pg_terminate_backend($1)", before[0]),
        proof=proof,
        window=5.0,
        leaks=direct.leaks(),
    )


async def test_kept_connection_ended_by_the_server_fails_at_once_and_the_relogin_is_spread(spread: PgWorld) -> None:
    """With a relogin spread: the close event shows at once (network db:connection_lost, shared: degraded), with no
    login, and the agent logs in again by itself within the spread."""
    await spread.agent.wait_status("ready", 20)  # the first round has logged in: there is a kept session
    before = await spread.control.pids(spread.role)
    assert len(before) == 1, f"expected the one kept session, found {before}"

    async def nothing() -> None:  # the agent recovers by itself once its relogin delay has passed
        return None

    await run_fault(
        spread.agent,
        "kept PostgreSQL session ended by the server, relogin spread 3 s",
        Expect("db", "default", "network", ("db:connection_lost",), "degraded", scope="shared"),
        inject=lambda: spread.control.execute("SELECT pg_terminate_backend($1)", before[0]),
        clear=nothing,
        bounds=Bounds(detect=1.0 + SLACK, recover=3.0 + TIMEOUT + SLACK),
        leaks=spread.leaks(),
        never_503=True,
    )


@pytest.mark.parametrize(
    ("fault", "mode", "status", "reason", "code"),
    [
        ("backend hangs (accepts, never answers)", Mode.HANG, 200, "timeout", "app:timeout"),
        ("backend answers 500", Mode.ANSWER, 500, "server", "app:http_500"),
        ("backend stops listening", Mode.DOWN, 200, "network", "app:refused"),
    ],
)
async def test_a_broken_backend_is_this_tasks_failure(
    fronting: PgWorld, stand_in_backend: Backend, fault: str, mode: Mode, status: int, reason: str, code: str
) -> None:
    """The backend probe's failures have scope task: /ready 503 not_ready after the threshold, ready once fixed."""

    async def inject() -> None:
        await asyncio.to_thread(stand_in_backend.set, mode, status)

    async def clear() -> None:
        await asyncio.to_thread(stand_in_backend.set, Mode.ANSWER, 200)

    await run_fault(
        fronting.agent,
        fault,
        Expect("app", "backend", reason, (code,), "not_ready", scope="task"),
        inject,
        clear,
        bounds(run=TIMEOUT),
        fronting.leaks(),
    )


# -- network faults and a full server, through the proxy ----------------------------------------------------


async def test_database_that_accepts_and_never_answers_is_timeout_degraded(
    proxied: PgWorld, pg_fault_proxy: FaultProxy
) -> None:
    """The kept connection freezes mid-query and new logins hang: both bounded by the probe timeout."""

    async def inject() -> None:
        pg_fault_proxy.set(Fault.HANG)

    async def clear() -> None:
        pg_fault_proxy.set(Fault.PASS)

    await run_fault(
        proxied.agent,
        "PostgreSQL hangs (accepts, never answers)",
        expect("timeout", "db:timeout", status="degraded"),
        inject,
        clear,
        bounds(run=TIMEOUT),
        proxied.leaks(),
    )


async def test_connection_reset_during_the_handshake_is_network_degraded(
    proxied: PgWorld, pg_fault_proxy: FaultProxy
) -> None:
    """Every connection is accepted, then reset before the server's first byte."""

    async def inject() -> None:
        pg_fault_proxy.set(Fault.RESET)

    async def clear() -> None:
        pg_fault_proxy.set(Fault.PASS)

    await run_fault(
        proxied.agent,
        "connection reset during the PostgreSQL handshake",
        expect("network", "db:reset", status="degraded"),
        inject,
        clear,
        bounds(),
        proxied.leaks(),
    )


async def test_max_connections_exhausted_is_server_degraded(
    proxied: PgWorld, pg_fault_proxy: FaultProxy, pg_control: PgControl
) -> None:
    """Other clients hold every slot (max_connections): 53300 is the server's problem, not this task's."""
    filler_password = distinctive("PostgreSQL password (filler)")
    filler = await pg_control.role(filler_password)

    async def inject() -> None:
        # Cut the agent off while the slots are taken, so the slot its kept session frees goes to a filler.
        pg_fault_proxy.set(Fault.REFUSE)
        for _ in range(30):
            if not await proxied.control.pids(proxied.role):
                break
            await asyncio.sleep(0.1)
        taken = await pg_control.fill(filler, filler_password)
        assert taken > 0
        # Another agent of this module (`direct`) closes and reopens its session at every fresh login: the slot
        # it frees for a moment must go to a filler, not to the agent under test.
        keeping.append(asyncio.create_task(keep_full()))
        pg_fault_proxy.set(Fault.PASS)

    async def keep_full() -> None:
        while True:
            await pg_control.fill(filler, filler_password)
            await asyncio.sleep(0.02)

    async def clear() -> None:
        for task in keeping:
            task.cancel()
        await asyncio.gather(*keeping, return_exceptions=True)
        await pg_control.release()

    keeping: list[asyncio.Task[None]] = []
    try:
        await run_fault(
            proxied.agent,
            "PostgreSQL max_connections exhausted by other clients",
            expect("server", "pg:53300", status="degraded"),
            inject,
            clear,
            bounds(),
            proxied.leaks(),
        )
    finally:
        await clear()
        await pg_control.drop_role(filler)


@pytest.mark.slow
async def test_slow_database_within_the_timeout_stays_ready(proxied: PgWorld, pg_fault_proxy: FaultProxy) -> None:
    """Every packet 50 ms late: slower runs, no failure."""

    async def inject() -> None:
        pg_fault_proxy.set(Fault.SLOW, delay=0.05)

    async def proof() -> str | None:
        entry = next(p for p in (await proxied.agent.status())["probes"] if p["probe"] == "db")
        # A round trip crosses the proxy twice: a run through the slowed link takes 100 ms or more.
        return f"db runs take {entry['last_duration_ms']} ms" if (entry["last_duration_ms"] or 0) >= 95 else None

    try:
        await run_masked(
            proxied.agent,
            "PostgreSQL link 50 ms slow per packet",
            "slower runs, ready throughout",
            inject,
            proof,
            window=5.0,
            leaks=proxied.leaks(),
        )
    finally:
        pg_fault_proxy.set(Fault.PASS)


@pytest.mark.slow
async def test_slow_database_beyond_the_timeout_is_timeout_degraded(
    proxied: PgWorld, pg_fault_proxy: FaultProxy
) -> None:
    """Every packet later than the probe timeout: as good as a hang."""

    async def inject() -> None:
        pg_fault_proxy.set(Fault.SLOW, delay=TIMEOUT * 1.5)

    async def clear() -> None:
        pg_fault_proxy.set(Fault.PASS)

    await run_fault(
        proxied.agent,
        f"PostgreSQL link {TIMEOUT * 1.5:g} s slow per packet",
        expect("timeout", "db:timeout", status="degraded"),
        inject,
        clear,
        bounds(run=TIMEOUT),
        proxied.leaks(),
    )


@pytest.mark.slow
async def test_strict_policy_takes_a_task_out_on_a_shared_outage(
    pg_control: PgControl, pg_fault_proxy: FaultProxy
) -> None:
    """Under `strict` the same refused database is not_ready (503): the operator chose replacement."""
    password = distinctive("PostgreSQL password (strict)")
    role = await pg_control.role(password)
    env = {
        **FAST,
        "AGENT_READINESS_POLICY": "strict",
        "AGENT_DB_DSN": f"postgresql://{role}@127.0.0.1:{pg_fault_proxy.port}/postgres",
        "AGENT_DB_PASSWORD": password,
    }

    async def inject() -> None:
        pg_fault_proxy.set(Fault.REFUSE)

    async def clear() -> None:
        pg_fault_proxy.set(Fault.PASS)

    try:
        async with live_agent("pg-strict", env) as agent:
            await run_fault(
                agent,
                "PostgreSQL refused, readiness policy strict",
                expect("network", "db:refused", status="not_ready"),
                inject,
                clear,
                bounds(),
            )
    finally:
        await pg_control.drop_role(role)
