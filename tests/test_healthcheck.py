"""The built-in healthcheck command against real loopback listeners: 0 only on HTTP 200, fast otherwise."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from agent.healthcheck import healthcheck
from agent.runtime.state import AgentState
from tests.support.http import ready_state, serve
from tests.support.results import PAIRS, make_config


def port_of(base_url: str) -> int:
    """The port in http://127.0.0.1:PORT."""
    return int(base_url.rsplit(":", 1)[1])


async def check(port: int, ready: bool = False, timeout: float = 2.0) -> int:
    """Run the blocking command off the loop, so the agent's server on this loop can answer it."""
    return await asyncio.to_thread(healthcheck, port, ready, "127.0.0.1", timeout)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A listener that accepts connections (the kernel does) and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_live_agent_is_healthy_and_ready() -> None:
    """Exit 0 for /health and, once every probe passed, for /ready."""
    async with serve(ready_state()) as base:
        assert await check(port_of(base)) == 0
        assert await check(port_of(base), ready=True) == 0


async def test_503_is_unhealthy() -> None:
    """A starting agent answers /ready 503: exit 1 with --ready, while /health still exits 0."""
    async with serve(AgentState(make_config(), PAIRS)) as base:
        assert await check(port_of(base), ready=True) == 1
        assert await check(port_of(base)) == 0


async def test_refused_port_fails_fast(closed_port: int) -> None:
    """Nothing listening: exit 1 at once."""
    started = time.monotonic()
    assert await check(closed_port) == 1
    assert time.monotonic() - started < 0.5


async def test_silent_listener_fails_within_the_timeout(silent_port: int) -> None:
    """A listener that never answers: exit 1 after about the 2 s budget, not later."""
    started = time.monotonic()
    assert await check(silent_port) == 1
    assert 1.5 < time.monotonic() - started < 2.5


async def test_garbage_answer_is_unhealthy() -> None:
    """Something that is not HTTP on the port: exit 1."""

    async def babble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(babble, "127.0.0.1", 0)
    async with server:
        assert await check(server.sockets[0].getsockname()[1]) == 1


def test_import_stays_light() -> None:
    """Importing it pulls in no aiohttp, pydantic or prometheus_client: ECS runs it every interval."""
    code = "import sys, agent.healthcheck; print(' '.join(sorted(sys.modules)))"
    modules = set(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    )
    assert "agent.healthcheck" in modules
    assert not {m for m in modules if m.split(".")[0] in {"aiohttp", "pydantic", "prometheus_client", "yaml"}}


def test_command_reads_no_package_metadata(closed_port: int) -> None:
    """The whole `healthcheck` command (parser with --version included) runs without importing importlib.metadata."""
    code = (
        "import sys; from agent.cli import main; "
        f"code = main(['healthcheck', '--port', '{closed_port}']); "
        "print(code, 'importlib.metadata' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.split() == ["1", "False"]  # 1: nothing listens on the port
