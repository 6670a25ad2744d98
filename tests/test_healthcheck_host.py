"""`ecs-health-agent healthcheck` dials where `serve` listens (AGENT_HOST, AGENT_PORT, read as serve reads them),
and a bad port or host is exit 2 naming it, never a silent 127.0.0.1:8099."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from agent.config.hosts import dial_host
from agent.outputs.server import create_app, start_server
from tests.support.agent_process import run_agent
from tests.support.http import bound_port, ready_state
from tests.support.results import make_config


async def healthcheck(env: dict[str, str], *args: str) -> tuple[int, str]:
    proc = await asyncio.to_thread(run_agent, "healthcheck", *args, env=env, timeout=30)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stderr


@pytest.fixture
async def on_ipv6_loopback() -> AsyncIterator[int]:
    """The agent's server on ::1 only, as AGENT_HOST=::1 makes it: 127.0.0.1 does not reach it."""
    runner = await start_server(create_app(ready_state(), make_config()), "::1", 0)
    try:
        yield bound_port(runner)
    finally:
        await runner.cleanup()


@pytest.fixture
async def on_ipv6_wildcard() -> AsyncIterator[int]:
    runner = await start_server(create_app(ready_state(), make_config()), "::", 0)
    try:
        yield bound_port(runner)
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(("listen", "dial"), [("0.0.0.0", "127.0.0.1"), ("::", "::1"), ("0:0::0", "::1")])
def test_a_wildcard_is_dialled_on_the_loopback_of_its_family(listen: str, dial: str) -> None:
    assert dial_host(listen) == dial
    assert dial_host("10.0.0.5") == "10.0.0.5" and dial_host("db.internal") == "db.internal"


async def test_it_follows_agent_host_where_it_used_to_dial_127_0_0_1(on_ipv6_loopback: int) -> None:
    port = str(on_ipv6_loopback)
    assert (await healthcheck({"AGENT_HOST": "::1", "AGENT_PORT": port}))[0] == 0
    code, stderr = await healthcheck({"AGENT_PORT": port})  # 0.0.0.0 by default: the agent is not there
    assert code == 1 and f"on 127.0.0.1:{port}:" in stderr


async def test_the_ipv6_wildcard_is_dialled_on_ipv6_loopback(on_ipv6_wildcard: int) -> None:
    assert (await healthcheck({"AGENT_HOST": "::", "AGENT_PORT": str(on_ipv6_wildcard)}, "--ready"))[0] == 0


@pytest.mark.parametrize(
    ("env", "args", "expected"),
    [
        ({}, ("--port", "70000"), "argument --port: '70000' is not a port: expected a number from 1 to 65535"),
        ({}, ("--port", "0"), "argument --port: '0' is not a port"),
        ({"AGENT_PORT": "abc"}, (), "invalid configuration: AGENT_PORT: 'abc' is not a port: expected a number"),
        ({"AGENT_PORT": "70000"}, (), "AGENT_PORT: '70000' is not a port"),
        ({"AGENT_HOST": "a..b"}, (), "AGENT_HOST: 'a..b' is not a host name"),
        ({"AGENT_HOST": "[::1]"}, (), "AGENT_HOST: '[::1]': write an IPv6 address without brackets (::1)"),
    ],
)
async def test_a_bad_port_or_host_is_exit_2_naming_it(
    env: dict[str, str], args: tuple[str, ...], expected: str
) -> None:
    code, stderr = await healthcheck(env, *args)
    assert (code, expected in stderr) == (2, True), stderr


async def test_an_explicit_port_wins_over_agent_port(on_ipv6_wildcard: int) -> None:
    env = {"AGENT_HOST": "::", "AGENT_PORT": "1"}
    assert (await healthcheck(env, "--port", str(on_ipv6_wildcard)))[0] == 0
