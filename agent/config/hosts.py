"""Host names and addresses as users write them: which are valid, how to show one with its port, and which address
reaches a listener bound to a wildcard.

Standard library only: the healthcheck command imports it, and must not load pydantic.
"""

from __future__ import annotations

import ipaddress
import re

from agent.config.echo import shown

# RFC 1123 labels, plus '_' (container and service-discovery names use it); at most 63 octets each.
_LABEL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")
_MAX_NAME = 253  # RFC 1035 2.3.4, without the trailing dot
# What each wildcard listener is reached through from inside the same network namespace.
_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1"}


def host_problem(host: str) -> str | None:
    """Why `host` is neither an IP address nor a DNS name (None when it is one). The socket module encodes a name
    with the 'idna' codec before any lookup, so a name that fails here would fail there with a UnicodeError."""
    if not host:
        return "the host is empty"
    quoted = shown(host)
    if host.startswith("[") and host.endswith("]") and is_ip(host[1:-1]):
        return f"{quoted}: write an IPv6 address without brackets ({host[1:-1]})"
    if is_ip(host):
        return None
    try:
        ascii_name = host.encode("idna").decode("ascii")
    except UnicodeError:
        return f"{quoted} is not a host name: its dot-separated labels must be 1 to 63 characters"
    labels = ascii_name.removesuffix(".").split(".")
    if len(ascii_name.removesuffix(".")) > _MAX_NAME or not all(_LABEL.match(label) for label in labels):
        return (
            f"{quoted} is not a host name or an IP address: expected labels of letters, digits, '-' and '_' joined"
            " by '.', at most 253 characters (e.g. db.internal, 10.0.0.5 or ::1)"
        )
    return None


def is_ip(host: str) -> bool:
    """Whether `host` is an IPv4 or IPv6 address literal (without brackets)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def normal_host(host: str) -> str:
    """An IP address in its canonical form (`0:0::0` -> `::`), a name as given."""
    return str(ipaddress.ip_address(host)) if is_ip(host) else host


def address(host: str, port: int) -> str:
    """host:port as a person writes it, an IPv6 address in brackets ([::1]:5432, RFC 3986 3.2.2)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def dial_host(listen_host: str) -> str:
    """The address that reaches a listener on `listen_host`: loopback of the same family for a wildcard."""
    return _LOOPBACK.get(normal_host(listen_host), listen_host)
