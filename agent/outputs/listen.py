"""Where the HTTP server listens: AGENT_HOST as a person means it, `::` included."""

from __future__ import annotations

import socket

from aiohttp import web

DUAL_STACK = "::"  # agent.config normalises every spelling of the IPv6 wildcard to this one


def listening_site(runner: web.AppRunner, host: str, port: int) -> web.BaseSite:
    """An aiohttp site on host:port. asyncio sets IPV6_V6ONLY on every IPv6 listener, so `::` would refuse IPv4
    clients (an ALB health check over IPv4); for `::` the site gets one socket with the option cleared, which
    takes both families, as `::` means to a server on Linux (net.ipv6.bindv6only=0). Raises OSError."""
    if host != DUAL_STACK:
        return web.TCPSite(runner, host, port)
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return web.SockSite(runner, sock)
