"""Where the HTTP server listens: AGENT_HOST as a person means it, `::` included."""

from __future__ import annotations

import socket

DUAL_STACK = "::"  # agent.config normalises every spelling of the IPv6 wildcard to this one


def dual_stack_socket(host: str, port: int) -> socket.socket | None:
    """For `::`, a bound socket that takes both families; None for any other host (asyncio binds those itself).
    asyncio sets IPV6_V6ONLY on every IPv6 listener, so `::` would refuse IPv4 clients (an ALB health check over
    IPv4); this socket has the option cleared, as `::` means to a server on Linux (net.ipv6.bindv6only=0).
    Raises OSError."""
    if host != DUAL_STACK:
        return None
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock
