"""The agent's HTTP app on a loopback ephemeral port, fed a state; one-request helpers to read it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, NamedTuple

import aiohttp
from aiohttp import web

from agent.config.models import AgentConfig
from agent.outputs.server import create_app, start_server
from agent.runtime.state import AgentState
from tests.support.results import PAIRS, make_config, passed

IDENTITY = {
    "provider": "container-role",
    "account": "123456789012",
    "arn": "arn:aws:sts::123456789012:assumed-role/app/task",
    "expires_at": "2030-01-02T03:04:05+00:00",
}


@asynccontextmanager
async def serve(state: AgentState, config: AgentConfig | None = None) -> AsyncIterator[str]:
    """Run the agent's app on 127.0.0.1, an ephemeral port; yield its base URL."""
    runner = await start_server(create_app(state, config or make_config()), "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{bound_port(runner)}"
    finally:
        await runner.cleanup()


def bound_port(runner: web.AppRunner) -> int:
    """The TCP port the runner listens on (the app is started on port 0)."""
    for address in runner.addresses:
        if isinstance(address, tuple):
            return int(address[1])
    raise RuntimeError("the runner is not listening on a TCP socket")


class Reply(NamedTuple):
    status: int
    headers: dict[str, str]
    body: Any  # parsed JSON, or raw bytes for anything else (HEAD, /metrics)


async def fetch(url: str, method: str = "GET") -> Reply:
    """One request on a fresh session."""
    async with aiohttp.ClientSession() as session, session.request(method, url) as response:
        raw = await response.read()
        body = await response.json() if raw and response.content_type == "application/json" else raw
        return Reply(response.status, dict(response.headers), body)


async def status_and_body(url: str) -> tuple[int, Any]:
    """Just the status code and the JSON body."""
    reply = await fetch(url)
    return reply.status, reply.body


def ready_state(config: AgentConfig | None = None) -> AgentState:
    """A state in which every expected probe has passed, identity known."""
    state = AgentState(config or make_config(), PAIRS)
    state.record(passed("credentials", "aws", details=IDENTITY))
    state.record(passed())
    return state
