"""Helpers for tests that run `serve` as a process against PostgreSQL: fast cadences, env, waits, metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.support.agent_process import ServedAgent
from tests.support.databases import Server

FAST = {
    "AGENT_INTERVAL_SECONDS": "0.2",
    "AGENT_TIMEOUT_SECONDS": "1",
    "AGENT_FAILURE_THRESHOLD": "2",
    "AGENT_SHUTDOWN_GRACE_SECONDS": "0.5",
    "AGENT_DB_RELOGIN_SPREAD_SECONDS": "0",  # a lost kept connection is replaced in the same run
}


def pg_env(server: Server, user: str, password: str, port: int | None = None) -> dict[str, str]:
    dsn = f"postgresql://{user}@127.0.0.1:{port or server.port}/{server.admin_database}"
    return {**FAST, "AGENT_DB_DSN": dsn, "AGENT_DB_PASSWORD": password}


async def wait_status(agent: ServedAgent, status: str, timeout: float = 15.0) -> dict[str, Any]:
    return await asyncio.to_thread(agent.wait_for, lambda body: body["status"] == status, "/status", timeout)


async def metrics(agent: ServedAgent) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await asyncio.to_thread(agent.get, "/metrics")
    assert response.status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.body.decode())
        for sample in family.samples
    }


def sample(values: dict[Any, float], name: str, **labels: str) -> float:
    return values[(f"health_agent_{name}", tuple(sorted(labels.items())))]
