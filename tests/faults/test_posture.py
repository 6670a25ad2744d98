"""Security posture of the HTTP face: AGENT_STATUS_DETAIL=summary reveals no message, hint or AWS identity
anywhere; no endpoint changes state (every other method is 405 and nothing moves), and reading an endpoint
never runs a probe, opens a connection or calls AWS.
"""

from __future__ import annotations

import asyncio
import html
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest

from agent.sandbox.aws import CredentialsEndpoint
from agent.sandbox.postgres import PostgresSandbox
from tests.faults.cadence import FAST
from tests.faults.harness import LiveAgent, live_agent
from tests.faults.hygiene import distinctive
from tests.faults.servers import PgControl
from tests.faults.stubs import distinctive_task_role
from tests.support.aws import REGION, Moto

PATHS = ("/health", "/ready", "/status", "/metrics", "/")
WRITES = ("POST", "PUT", "DELETE", "PATCH")


@pytest.fixture
async def endpoint(moto: Moto) -> AsyncIterator[CredentialsEndpoint]:
    keys = await distinctive_task_role(moto, "posture")
    served = CredentialsEndpoint(keys, role_arn=moto.identities.role_arn)
    await served.start()
    try:
        yield served
    finally:
        await served.stop()


def probe(body: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in body["probes"] if p["probe"] == name)


async def test_summary_detail_drops_messages_hints_and_the_aws_identity_everywhere(
    moto: Moto, endpoint: CredentialsEndpoint, fault_cluster: PostgresSandbox, pg_control: PgControl
) -> None:
    """Two agents, the same failing login (wrong password) and the same task role: `full` shows the message,
    the hint and the role ARN; `summary` shows none of them in /status, on the page or in the metrics."""
    role = await pg_control.role(distinctive("PostgreSQL password (posture, right)"))
    env = {
        **FAST,
        "AGENT_DB_DSN": f"postgresql://{role}@{fault_cluster.host}:{fault_cluster.port}/postgres",
        "AGENT_DB_PASSWORD": distinctive("PostgreSQL password (posture, wrong)"),
        "AGENT_AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": moto.url,
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": endpoint.url,
        "AGENT_DB_SECRET_ID": "posture-secret-that-does-not-exist",
    }
    try:
        async with AsyncExitStack() as stack:
            full = await stack.enter_async_context(live_agent("posture-full", env))
            summary = await stack.enter_async_context(
                live_agent("posture-summary", {**env, "AGENT_STATUS_DETAIL": "summary"})
            )
            for agent in (full, summary):
                await agent.wait_for(lambda s: s.code("db", "default") == "pg:28P01" and s.status == "not_ready", 15)
            full_status = await full.status()
            sensitive = [
                str(probe(full_status, "db")["message"]),
                str(probe(full_status, "db")["hint"]),
                str(probe(full_status, "secret")["message"]),
                str(probe(full_status, "secret")["hint"]),
                full_status["aws"]["arn"],
                full_status["aws"]["account"],
                role,
            ]
            assert all(sensitive) and role in sensitive[0], "the full report must carry what summary drops"
            summary_status = await summary.status()
            assert "aws" not in summary_status
            assert all("message" not in p and "hint" not in p for p in summary_status["probes"])
            assert [(p["probe"], p["reason"], p["code"]) for p in summary_status["probes"]] == [
                (p["probe"], p["reason"], p["code"]) for p in full_status["probes"]
            ], "summary keeps the machine-readable verdict"
            for path in PATHS:
                text = (await summary.get(path)).body.decode()
                shown = [s[:40] for s in sensitive if s in text or html.escape(s) in text]
                assert not shown, f"summary {path} shows {shown}"
    finally:
        await pg_control.drop_role(role)


async def test_no_endpoint_changes_state_and_reading_never_runs_a_probe(
    moto: Moto, endpoint: CredentialsEndpoint, fault_cluster: PostgresSandbox, pg_control: PgControl
) -> None:
    """With a 30 s interval nothing runs after the first round: 800 writes (all 405) and 200 reads later,
    /status and the agent's metrics are byte for byte the same, no session was opened on the database and
    the credentials endpoint was not asked again."""
    password = distinctive("PostgreSQL password (posture, secret)")
    role = await pg_control.role(password)
    secret, _ = await moto.secret({"username": role, "password": password})
    env = {
        "AGENT_INTERVAL_SECONDS": "30",
        "AGENT_DB_DSN": f"postgresql://{fault_cluster.host}:{fault_cluster.port}/postgres",
        "AGENT_DB_SECRET_ID": secret,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": moto.url,
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": endpoint.url,
        "AGENT_SHUTDOWN_GRACE_SECONDS": "0.2",
    }
    try:
        async with live_agent("posture-readonly", env) as agent:
            await agent.wait_status("ready", 20)
            before = await _observable(agent, pg_control, role, endpoint)
            # Many at once, yet below the agent's connection cap (agent/outputs/connections.py), which would close
            # the oldest of a larger burst unanswered: what is checked here is each answer, not the cap.
            at_once = asyncio.Semaphore(64)

            async def get(path: str, method: str = "GET") -> Any:
                async with at_once:
                    return await agent.get(path, method=method)

            writes = await asyncio.gather(*(get(p, m) for p in PATHS for m in WRITES for _ in range(40)))
            assert {w.status for w in writes} == {405}
            reads = await asyncio.gather(*(get(p) for p in PATHS for _ in range(40)))
            assert {r.status for r in reads} == {200}
            after = await _observable(agent, pg_control, role, endpoint)
    finally:
        await pg_control.drop_role(role)
    for key in before:
        assert after[key] == before[key], f"{key} changed:\n{before[key]!r}\n{after[key]!r}"


async def _observable(agent: LiveAgent, control: PgControl, role: str, endpoint: CredentialsEndpoint) -> dict[str, str]:
    """Everything a state change would show in: the report, the agent's own metrics, sessions, AWS requests."""
    status = json.dumps(await agent.status(), sort_keys=True)
    metrics = "\n".join(line for line in (await agent.metrics()).splitlines() if not line.startswith("process_"))
    return {
        "/status": status,
        "/metrics": metrics,
        "database sessions": repr(await control.pids(role)),
        "credentials endpoint requests": str(endpoint.requests),
    }
