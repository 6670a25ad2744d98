"""MariaDB faults against a running agent. On the machine's shared server only this suite's own users are
changed (password, existence, MAX_USER_CONNECTIONS, their sessions), never a global setting, and network faults
come from a fault proxy; server-wide faults (stop, max_connections) use a private server in a temp directory.
Each fault is classified, /ready follows the gate policy, /health stays 200, and the agent recovers within its
success threshold.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from agent.config.dsn import Engine
from tests.faults.cadence import FAST, REAUTH, TIMEOUT, bounds
from tests.faults.harness import LiveAgent, live_agent
from tests.faults.hygiene import distinctive
from tests.faults.private_mariadb import PrivateMariaDB
from tests.faults.scenario import Action, Expect, Leaks, record_static, run_fault, run_masked
from tests.faults.servers import MyControl
from tests.support.databases import Server
from tests.support.fault_proxy import Fault, FaultProxy, fault_proxy

USER_LIMIT = 2  # MAX_USER_CONNECTIONS of the agent's user: the kept session and one login replacing it
MAX_CONNECTIONS = 10  # MariaDB's smallest max_connections


@dataclass
class MyWorld:
    agent: LiveAgent
    user: str
    password: str
    control: MyControl
    proxy: FaultProxy | None = None

    async def sessions(self) -> int:
        return len(await self.control.thread_ids(self.user))

    def leaks(self) -> Leaks:
        return Leaks(self.sessions)

    def set(self, fault: Fault) -> Action:
        """An action switching the proxy to `fault`."""

        async def action() -> None:
            assert self.proxy is not None
            self.proxy.set(fault)

        return action


@pytest.fixture(scope="module")
def my_proxy(mysql_server: Server) -> Iterator[FaultProxy]:
    with fault_proxy(mysql_server.host, mysql_server.port) as proxy:
        yield proxy


@pytest.fixture(scope="module")
async def world(my_control: MyControl, my_proxy: FaultProxy) -> AsyncIterator[MyWorld]:
    """An agent logging in to MariaDB through the fault proxy as a user of its own."""
    password = distinctive("MariaDB password")
    user = await my_control.user(password, max_connections=USER_LIMIT)
    env = {
        **FAST,
        "AGENT_DB_DSN": f"mysql://{user}@127.0.0.1:{my_proxy.port}/?sslmode=disable",
        "AGENT_DB_PASSWORD": password,
    }
    async with live_agent("mariadb", env) as agent:
        yield MyWorld(agent, user, password, my_control, my_proxy)


def expect(reason: str, *codes: str, status: str) -> Expect:
    return Expect("db", "default", reason, codes, status)


async def test_password_changed_is_auth_not_ready(world: MyWorld) -> None:
    """ALTER USER ... IDENTIFIED BY: the next fresh login is denied (1045), a task-local failure."""
    other = distinctive("MariaDB password (changed)")
    await run_fault(
        world.agent,
        "MariaDB password changed on the server",
        expect("auth", "mysql:1045", status="not_ready"),
        inject=lambda: world.control.set_password(world.user, other),
        clear=lambda: world.control.set_password(world.user, world.password),
        bounds=bounds(masked=REAUTH),
        leaks=world.leaks(),
    )


async def test_user_dropped_is_auth_not_ready(world: MyWorld) -> None:
    """DROP USER (its sessions killed): MariaDB denies an unknown user like a wrong password.

    Usually 1045; 1698 when MariaDB's fake authentication for an unknown user picks a plugin that sends no
    password (seen under concurrent logins). Both are `auth`: the point is never `config` or `network`.
    """

    async def inject() -> None:
        await world.control.drop_user(world.user)
        for thread_id in await world.control.thread_ids(world.user):
            await world.control.kill(thread_id)

    await run_fault(
        world.agent,
        "MariaDB user dropped",
        expect("auth", "mysql:1045", "mysql:1698", status="not_ready"),
        inject,
        clear=lambda: world.control.user(world.password, world.user, max_connections=USER_LIMIT),
        bounds=bounds(),
        leaks=world.leaks(),
    )


async def test_kept_connection_killed_is_absorbed(world: MyWorld) -> None:
    """KILL of the agent's own session: the next run logs in again within the same run; never a failure."""
    before = await world.control.thread_ids(world.user)
    assert len(before) == 1, f"expected the one kept session, found {before}"

    async def proof() -> str | None:
        now = await world.control.thread_ids(world.user)
        return f"new session (id {before[0]} -> {now[0]})" if now and now != before else None

    await run_masked(
        world.agent,
        "kept MariaDB session killed (KILL)",
        "absorbed: a fresh login in the same run, ready throughout",
        inject=lambda: world.control.kill(before[0]),
        proof=proof,
        window=5.0,
        leaks=world.leaks(),
    )


async def test_user_connection_limit_reached_is_server_degraded(world: MyWorld) -> None:
    """Other sessions of the same user hold its MAX_USER_CONNECTIONS: a resource limit, not bad credentials."""
    proxy = world.proxy
    assert proxy is not None  # the module's `world` always goes through the fault proxy

    async def inject() -> None:
        proxy.set(Fault.REFUSE)  # the agent's kept session is cut; its slot goes to a filler
        for _ in range(30):
            if not await world.control.thread_ids(world.user):
                break
            await asyncio.sleep(0.1)
        assert await world.control.fill(world.user, world.password) == USER_LIMIT
        proxy.set(Fault.PASS)

    try:
        await run_fault(
            world.agent,
            "MariaDB user's MAX_USER_CONNECTIONS reached by other sessions",
            expect("server", "mysql:1226", status="degraded"),
            inject,
            world.control.release,
            bounds(),
            Leaks(world.sessions, max_sessions=USER_LIMIT + 1),  # the fillers count too
        )
    finally:
        await world.control.release()


async def test_server_that_accepts_and_never_answers_is_timeout_degraded(world: MyWorld) -> None:
    """No greeting ever comes (aiomysql alone would wait forever): bounded by the probe timeout."""
    await run_fault(
        world.agent,
        "MariaDB hangs (accepts, never answers)",
        expect("timeout", "db:timeout", status="degraded"),
        world.set(Fault.HANG),
        world.set(Fault.PASS),
        bounds(run=TIMEOUT),
        world.leaks(),
    )


async def test_connection_reset_during_the_handshake_is_network_degraded(world: MyWorld) -> None:
    await run_fault(
        world.agent,
        "connection reset during the MariaDB handshake",
        expect("network", "mysql:2013", status="degraded"),
        world.set(Fault.RESET),
        world.set(Fault.PASS),
        bounds(),
        world.leaks(),
    )


async def test_refused_connections_are_network_degraded(world: MyWorld) -> None:
    """The server's port stops accepting (the proxy closes its listener): refused, a shared outage."""
    await run_fault(
        world.agent,
        "MariaDB port refuses connections",
        expect("network", "mysql:2003:refused", status="degraded"),
        world.set(Fault.REFUSE),
        world.set(Fault.PASS),
        bounds(),
        world.leaks(),
    )


async def test_tls_required_against_a_server_without_tls_never_sends_the_password(
    my_control: MyControl, mysql_server: Server
) -> None:
    """sslmode=require and a server without TLS: aiomysql would quietly log in in plaintext; the agent stops
    before sending any credential (tls) and stays `starting` (503), since TLS is not a task-local reason."""
    have_ssl = (await my_control.execute("SHOW VARIABLES LIKE 'have_ssl'"))[0][1]
    assert have_ssl != "YES", "this case needs a MariaDB without TLS; the shared server has it enabled"
    password = distinctive("MariaDB password (TLS)")
    user = await my_control.user(password)
    env = {
        **FAST,
        "AGENT_DB_DSN": f"mysql://{user}@{mysql_server.host}:{mysql_server.port}/?sslmode=require",
        "AGENT_DB_PASSWORD": password,
    }
    want = expect("tls", "db:tls_not_negotiated", status="starting")
    problems: list[str] = []
    sample = None
    async with live_agent("mariadb-tls", env) as agent:
        try:
            sample = await agent.wait_for(want.matches, bounds().detect)
        except AssertionError as exc:
            problems.append(str(exc))
        if await world_sessions(my_control, user):
            problems.append("a session was logged in although TLS was not negotiated")
    record_static(agent, "TLS required by the agent, MariaDB without TLS", want, sample, problems)
    assert not problems, "; ".join(problems)


async def world_sessions(control: MyControl, user: str) -> int:
    return len(await control.thread_ids(user))


# -- server-wide faults, on a private server -------------------------------------------------------------------


@pytest.fixture(scope="module")
def private_server() -> Iterator[PrivateMariaDB]:
    try:
        server = PrivateMariaDB()
        server.install()
        server.start()
    except RuntimeError as exc:
        pytest.fail(f"cannot start a private MariaDB server: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
async def private(private_server: PrivateMariaDB) -> AsyncIterator[MyWorld]:
    """An agent logging in directly to the private server."""
    control = MyControl(Server(Engine.MYSQL, private_server.host, private_server.port, "root", "", None))
    password = distinctive("MariaDB password (private server)")
    user = await control.user(password)
    env = {
        **FAST,
        "AGENT_DB_DSN": f"mysql://{user}@{private_server.host}:{private_server.port}/?sslmode=disable",
        "AGENT_DB_PASSWORD": password,
    }
    try:
        async with live_agent("mariadb-private", env) as agent:
            yield MyWorld(agent, user, password, control)
    finally:
        await control.close()


async def test_server_stopped_is_network_degraded_then_recovers_on_restart(
    private: MyWorld, private_server: PrivateMariaDB
) -> None:
    """A shutdown ends the kept session; logins are refused: a shared outage, degraded (200)."""
    await run_fault(
        private.agent,
        "MariaDB stopped, then started (private server)",
        expect("network", "mysql:2003:refused", status="degraded"),
        inject=lambda: asyncio.to_thread(private_server.stop),
        clear=lambda: asyncio.to_thread(private_server.start),
        bounds=bounds(),
        leaks=private.leaks(),
    )


async def test_max_connections_exhausted_is_server_degraded(private: MyWorld) -> None:
    """Other clients hold every connection (max_connections, lowered below what is open): 1040."""
    filler_password = distinctive("MariaDB password (private filler)")
    filler = await private.control.user(filler_password)

    async def inject() -> None:
        assert await private.control.fill(filler, filler_password, limit=MAX_CONNECTIONS) == MAX_CONNECTIONS
        # Lower than what is open: existing sessions stay, the agent's next login finds no slot.
        await private.control.execute(f"SET GLOBAL max_connections = {MAX_CONNECTIONS}")
        for thread_id in await private.control.thread_ids(private.user):
            await private.control.kill(thread_id)

    async def clear() -> None:
        await private.control.execute("SET GLOBAL max_connections = 151")
        await private.control.release()

    try:
        await run_fault(
            private.agent,
            "MariaDB max_connections exhausted by other clients (private server)",
            expect("server", "mysql:1040", status="degraded"),
            inject,
            clear,
            bounds(),
            private.leaks(),
        )
    finally:
        await clear()
        await private.control.drop_user(filler)
