"""Where the server listens: `AGENT_HOST=::` takes IPv4 and IPv6 clients on one port (an ALB checks over IPv4)."""

from __future__ import annotations

import socket

import pytest

from agent.outputs.server import create_app, start_server
from tests.support.http import bound_port, fetch, ready_state
from tests.support.results import make_config


async def test_the_ipv6_wildcard_takes_ipv4_and_ipv6_clients() -> None:
    """asyncio sets IPV6_V6ONLY on IPv6 listeners: before, `::` refused every IPv4 client."""
    runner = await start_server(create_app(ready_state(), make_config()), "::", 0)
    try:
        port = bound_port(runner)
        for base in (f"http://127.0.0.1:{port}", f"http://[::1]:{port}"):
            assert (await fetch(f"{base}/health")).status == 200, base
    finally:
        await runner.cleanup()


async def test_a_busy_port_on_the_ipv6_wildcard_is_an_oserror() -> None:
    """The caller (app.serve) turns it into "cannot listen" and exit 1, as for any other address."""
    with socket.socket(socket.AF_INET6) as taken:
        taken.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        taken.bind(("::", 0))
        taken.listen(1)
        with pytest.raises(OSError):
            await start_server(create_app(ready_state(), make_config()), "::", taken.getsockname()[1])


async def test_an_ipv4_address_is_served_as_before() -> None:
    runner = await start_server(create_app(ready_state(), make_config()), "127.0.0.1", 0)
    try:
        assert (await fetch(f"http://127.0.0.1:{bound_port(runner)}/health")).status == 200
    finally:
        await runner.cleanup()
