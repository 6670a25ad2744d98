"""RDS Proxy throttling against running agents: a front (tests/support/protocol_front.py) forwards to the real
PostgreSQL and MariaDB until told to answer new logins itself with RDS Proxy's throttling errors, in the server's
own protocol. Each is throttled with scope shared: /ready 200 (degraded after the threshold) in every sample,
never not_ready, and ready again once the front forwards. The credentials endpoint's 429 is in test_aws_faults.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from agent.sandbox.postgres import PostgresSandbox
from tests.faults.cadence import FAST, REAUTH, bounds
from tests.faults.harness import LiveAgent, live_agent
from tests.faults.hygiene import distinctive
from tests.faults.scenario import Expect, Leaks, run_fault
from tests.faults.servers import MyControl, PgControl
from tests.support.databases import Server
from tests.support.protocol_front import Answer, ProtocolFront, mysql_error, pg_error


@dataclass
class Throttled:
    agent: LiveAgent
    front: ProtocolFront
    leaks: Leaks

    async def throttle(self, answer: Answer) -> None:
        self.front.refuse(answer)

    async def forward(self) -> None:
        self.front.forward()


@pytest.fixture(scope="module")
async def pg_throttled(fault_cluster: PostgresSandbox, pg_control: PgControl) -> AsyncIterator[Throttled]:
    """An agent logging in to the suite's PostgreSQL through the front (sslmode=prefer: the front answers 'N')."""
    front = await ProtocolFront(fault_cluster.host, fault_cluster.port).start()
    password = distinctive("PostgreSQL password (behind a throttling proxy)")
    role = await pg_control.role(password)
    env = {
        **FAST,
        "AGENT_DB_DSN": f"postgresql://{role}@127.0.0.1:{front.port}/postgres?sslmode=prefer",
        "AGENT_DB_PASSWORD": password,
    }

    async def sessions() -> int:
        return len(await pg_control.pids(role))

    try:
        async with live_agent("pg-throttle", env) as agent:
            yield Throttled(agent, front, Leaks(sessions))
    finally:
        await front.close()
        await pg_control.drop_role(role)


@pytest.fixture(scope="module")
async def mariadb_throttled(mysql_server: Server, my_control: MyControl) -> AsyncIterator[Throttled]:
    """An agent logging in to MariaDB through the front (the stand-in greets without offering TLS)."""
    front = await ProtocolFront(mysql_server.host, mysql_server.port).start()
    password = distinctive("MariaDB password (behind a throttling proxy)")
    user = await my_control.user(password, max_connections=2)
    env = {
        **FAST,
        "AGENT_DB_DSN": f"mysql://{user}@127.0.0.1:{front.port}/?sslmode=disable",
        "AGENT_DB_PASSWORD": password,
    }

    async def sessions() -> int:
        return len(await my_control.thread_ids(user))

    try:
        async with live_agent("mariadb-throttle", env) as agent:
            yield Throttled(agent, front, Leaks(sessions))
    finally:
        await front.close()


@pytest.mark.parametrize(
    ("sqlstate", "message"),
    [
        ("28000", "The IAM authentication failed because of too many competing requests."),
        ("53300", "Rate of connection to proxy exceeded 2000."),
    ],
    ids=["iam-competing", "proxy-rate"],
)
async def test_rds_proxy_throttling_over_postgres_is_throttled_shared_and_never_503(
    pg_throttled: Throttled, sqlstate: str, message: str
) -> None:
    """The kept connection hides it until the next fresh login (AGENT_DB_REAUTH_SECONDS), which is throttled."""
    await run_fault(
        pg_throttled.agent,
        f"RDS Proxy over PostgreSQL: {message!r} (stand-in SQLSTATE {sqlstate})",
        Expect("db", "default", "throttled", ("pg:throttled",), "degraded", scope="shared"),
        lambda: pg_throttled.throttle(pg_error(sqlstate, message)),
        pg_throttled.forward,
        bounds(masked=REAUTH),
        pg_throttled.leaks,
        never_503=True,
    )
    assert pg_throttled.front.answered > 0


async def test_rds_proxy_throttling_over_mysql_is_throttled_shared_and_never_503(mariadb_throttled: Throttled) -> None:
    message = "IAM authentication rate limit exceeded"
    await run_fault(
        mariadb_throttled.agent,
        f"RDS Proxy over MySQL: ERROR 1040 {message!r}",
        Expect("db", "default", "throttled", ("mysql:1040:throttled",), "degraded", scope="shared"),
        lambda: mariadb_throttled.throttle(mysql_error(1040, message)),
        mariadb_throttled.forward,
        bounds(masked=REAUTH),
        mariadb_throttled.leaks,
        never_503=True,
    )
    assert mariadb_throttled.front.answered > 0
