"""The connection cap and the descriptor budget: at the cap the oldest connection makes way for the new one, the
soft RLIMIT_NOFILE is raised to the hard one, and the cap leaves room for the probes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import resource
import subprocess
import sys

import pytest

from agent.outputs.connections import (
    BACKLOG,
    BASE_FDS,
    FDS_PER_TARGET,
    MAX_CONNECTIONS,
    MIN_CONNECTIONS,
    ConnectionCap,
    connection_limit,
)
from agent.outputs.io_metrics import OutputsCollector
from agent.outputs.server import create_app, start_server
from tests.support.agent_process import REPO
from tests.support.http import bound_port, ready_state
from tests.support.results import make_config

CAP = 8


def test_the_cap_keeps_descriptors_for_the_backlog_and_the_probes() -> None:
    assert connection_limit(1024, 1) == MAX_CONNECTIONS  # ECS's default soft limit
    assert connection_limit(65535, 1000) == MAX_CONNECTIONS
    reserved = BASE_FDS + BACKLOG + FDS_PER_TARGET * 10
    assert connection_limit(reserved + 100, 10) == 100
    assert connection_limit(256, 100) == MIN_CONNECTIONS  # too few descriptors: still answers health checks


BUDGET = (
    "import dataclasses, json; from agent.outputs.connections import descriptor_budget;"
    " print(json.dumps(dataclasses.asdict(descriptor_budget(3))))"
)


def budget_under(soft: int, hard: int) -> dict[str, int]:
    """descriptor_budget() in a child process started with RLIMIT_NOFILE (soft, hard)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    done = subprocess.run([sys.executable, "-c", BUDGET], capture_output=True, text=True, timeout=30, preexec_fn=limit)
    assert done.returncode == 0, done.stderr
    budget: dict[str, int] = json.loads(done.stdout)
    return budget


def test_the_soft_open_files_limit_is_raised_to_the_hard_one() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard < 2048:
        pytest.skip(f"the hard RLIMIT_NOFILE here is {hard}")
    assert budget_under(256, 2048) == {"soft": 2048, "hard": 2048, "max_connections": connection_limit(2048, 3)}
    assert budget_under(1024, 1024) == {"soft": 1024, "hard": 1024, "max_connections": MAX_CONNECTIONS}


async def open_idle(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    connection = await asyncio.open_connection("127.0.0.1", port)
    await asyncio.sleep(0.02)  # accepted one by one: the order the cap sees is the order they were opened
    return connection


async def closed_by_server(reader: asyncio.StreamReader, within: float = 1.0) -> bool:
    try:
        async with asyncio.timeout(within):
            return await reader.read() == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


async def test_at_the_cap_the_oldest_connection_makes_way_and_health_still_answers() -> None:
    """20 idle connections against a cap of 8: the 12 oldest are closed, the 8 newest stay; a health check on a
    new connection is answered; /metrics counts it; runner.cleanup() stops listening (BaseSite._server)."""
    runner = await start_server(create_app(ready_state(), make_config()), "127.0.0.1", 0, max_connections=CAP)
    port = bound_port(runner)
    held = []
    try:
        held = [await open_idle(port) for _ in range(20)]
        closed = await asyncio.gather(*(closed_by_server(reader, 0.3) for reader, _ in held))
        assert list(closed) == [True] * 12 + [False] * 8
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert (await reader.read()).startswith(b"HTTP/1.1 200")
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        metrics = (await reader.read()).decode()
        writer.close()
        assert f"health_agent_http_connections_max {float(CAP)}" in metrics
        evicted = next(line for line in metrics.splitlines() if line.startswith("health_agent_http_connections_evic"))
        assert float(evicted.split()[-1]) >= 13
        assert "health_agent_http_connections 8.0" in metrics
    finally:
        for _, writer in held:
            writer.close()
        await runner.cleanup()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_below_the_cap_nothing_is_closed() -> None:
    runner = await start_server(create_app(ready_state(), make_config()), "127.0.0.1", 0, max_connections=CAP)
    port = bound_port(runner)
    held = []
    try:
        held = [await open_idle(port) for _ in range(CAP - 1)]
        assert await asyncio.gather(*(closed_by_server(r, 0.3) for r, _ in held)) == [False] * (CAP - 1)
    finally:
        for _, writer in held:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        await runner.cleanup()


def test_every_metric_of_the_cap_and_the_log_writer_is_in_the_readme() -> None:
    """docs/metrics.md's table names each family (without the health_agent_ prefix)."""
    table = (REPO / "docs" / "metrics.md").read_text()
    names = [family.name for family in OutputsCollector(ConnectionCap(CAP)).collect()]
    assert len(names) == 5
    documented = {cell.split("{")[0] for cell in re.findall(r"^\| `([^`]+)`", table, re.MULTILINE)}
    for name in names:
        bare = name.removeprefix("health_agent_")
        assert bare in documented or f"{bare}_total" in documented, name
