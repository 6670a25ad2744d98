"""The tests' own resolver: no test reaches the machine's resolver or any address off the machine.

Python imports `sitecustomize` at start-up from PYTHONPATH; tests/support/hermetic.py puts this directory there for
every process the tests start, and calls `install` in the pytest process itself. From then on the `socket` module's
lookups (getaddrinfo, gethostbyname, gethostbyname_ex, gethostbyaddr, getnameinfo, and the name a socket's connect
resolves by itself) answer by these rules, first match wins:

- an address literal, or a lookup with AI_NUMERICHOST / NI_NUMERICHOST: the C library answers, no lookup happens;
- a name in the hosts file (EHA_TEST_HOSTS_FILE, JSON {"name": "address"}): that address. The file is read on
  every lookup, as glibc reads /etc/hosts, so a fault test makes a name resolve and stop resolving at will;
- a loopback name (`localhost`, `*.localhost`: RFC 6761): the loopback address;
- a name in DOES_NOT_RESOLVE: socket.gaierror(EAI_NONAME, "Name or service not known"), what glibc answers for a
  name no source knows, so the agent's `dns` classification is exercised exactly as in production;
- any other name: refused (socket.gaierror EAI_FAIL saying so) and recorded as one JSON line in the file
  EHA_TEST_RESOLVER_LOG names; the pytest session fails when that file has a line.
A connect to an address that is not loopback is refused (OSError ENETUNREACH) and recorded the same way.

Everything the agent and the tests use resolves through `socket.getaddrinfo`: asyncio's loop.getaddrinfo (asyncpg,
aiomysql via asyncio.open_connection, aiohttp's ThreadedResolver and so aiobotocore), socket.create_connection
(urllib). aiohttp with aiodns (c-ares) would not: tests/support/hermetic.py refuses to run if aiodns is installed.
No agent code knows about this module. Standard library only: it loads before anything else in every process.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from collections.abc import Callable
from typing import Any

# The names the tests use where a host must not resolve (the one list; tests import them from here).
NO_SUCH_DB_HOST = "no-such-db.eha.invalid"  # a DSN host that does not resolve (.invalid: RFC 6761, never delegated)
FAULTS_PG_HOST = "pg.eha-faults.test"  # the fault suite's host name: resolves only while its hosts file lists it
DOES_NOT_RESOLVE = frozenset({NO_SUCH_DB_HOST, FAULTS_PG_HOST})

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
LOG_VARIABLE = "EHA_TEST_RESOLVER_LOG"
HOSTS_VARIABLE = "EHA_TEST_HOSTS_FILE"
NONAME_MESSAGE = "Name or service not known"  # glibc's gai_strerror(EAI_NONAME)

_ORIGINAL = "_eha_original"  # set on each replacement: the function it replaced, so installing twice stacks nothing
_files: dict[str, str | None] = {"log": None, "hosts": None}


def install(log: str | None, hosts: str | None = None) -> None:
    """Answer this process's lookups by the rules above; refusals go to the file `log` (JSON lines).

    Idempotent: a second call replaces the files and the replacements, never wraps the first ones.
    """
    _files.update(log=log, hosts=hosts)
    for name, make in _REPLACEMENTS.items():
        current = getattr(socket, name)
        original = getattr(current, _ORIGINAL, current)
        replacement = make(original)
        setattr(replacement, _ORIGINAL, original)
        setattr(socket, name, replacement)
    for method in ("connect", "connect_ex"):
        current = getattr(socket.socket, method)
        original = getattr(current, _ORIGINAL, current)
        guarded = _guarded_connect(original, method)
        setattr(guarded, _ORIGINAL, original)
        setattr(socket.socket, method, guarded)


def install_from_environment() -> None:
    """`install` with the files the environment names (what a child process of the tests does at start-up)."""
    install(os.environ.get(LOG_VARIABLE), os.environ.get(HOSTS_VARIABLE))


def _answer(host: Any, call: str, family: int = socket.AF_UNSPEC) -> Any:
    """`host` itself when no lookup is needed, else the address literal the rules give for it (or raise)."""
    if host is None:
        return None
    name = host.decode() if isinstance(host, bytes | bytearray) else str(host)
    if _is_literal(name):
        return host
    key = name.rstrip(".").lower()
    table = _hosts_table()
    if key in table:
        return table[key]
    if key in LOOPBACK_NAMES or key.endswith(".localhost"):
        return "::1" if family == socket.AF_INET6 else "127.0.0.1"
    if key in DOES_NOT_RESOLVE:
        raise socket.gaierror(socket.EAI_NONAME, NONAME_MESSAGE)
    _record(call, name)
    raise socket.gaierror(
        socket.EAI_FAIL,
        f"the tests' resolver refused {call}({name!r}): not loopback, not declared "
        "(DOES_NOT_RESOLVE in tests/support/resolver/sitecustomize.py)",
    )


def _is_literal(name: str) -> bool:
    import ipaddress  # here, not at start-up: most processes never look anything up

    try:
        ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _is_local(address: str) -> bool:
    import ipaddress

    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified


def _hosts_table() -> dict[str, str]:
    path = _files["hosts"]
    if not path:
        return {}
    import json

    try:
        with open(path, encoding="utf-8") as file:
            table = json.load(file)
    except (OSError, ValueError):
        return {}
    return {str(k).rstrip(".").lower(): str(v) for k, v in table.items()}


def _record(call: str, name: str) -> None:
    """Append one line to the refusals file: what was looked up, by which process, during which test."""
    path = _files["log"]
    if not path:
        return
    import json

    entry = {
        "call": call,
        "name": name,
        "pid": os.getpid(),
        "process": " ".join(getattr(sys, "orig_argv", sys.argv))[:200],
        "test": os.environ.get("PYTEST_CURRENT_TEST", ""),
    }
    with open(path, "a", encoding="utf-8") as file:  # O_APPEND: one short write, whole lines from any process
        file.write(json.dumps(entry) + "\n")


def _getaddrinfo(original: Callable[..., Any]) -> Callable[..., Any]:
    def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0) -> Any:
        if not flags & socket.AI_NUMERICHOST:
            host = _answer(host, "getaddrinfo", family)
        return original(host, port, family, type, proto, flags)

    return getaddrinfo


def _gethostbyname(original: Callable[..., Any]) -> Callable[..., Any]:
    def gethostbyname(hostname: str) -> Any:
        return original(_answer(hostname, "gethostbyname", socket.AF_INET))

    return gethostbyname


def _gethostbyname_ex(original: Callable[..., Any]) -> Callable[..., Any]:
    def gethostbyname_ex(hostname: str) -> Any:
        return original(_answer(hostname, "gethostbyname_ex", socket.AF_INET))

    return gethostbyname_ex


def _gethostbyaddr(original: Callable[..., Any]) -> Callable[..., Any]:
    del original  # answered here: loopback needs no resolver, anything else is refused

    def gethostbyaddr(host: str) -> tuple[str, list[str], list[str]]:
        address = str(_answer(host, "gethostbyaddr"))  # a name is looked up forward first, as the C library does
        if _is_local(address):
            return "localhost", [], [address]
        _record("gethostbyaddr", address)
        raise socket.herror(1, f"the tests' resolver refused a reverse lookup of {address}")

    return gethostbyaddr


def _getnameinfo(original: Callable[..., Any]) -> Callable[..., Any]:
    def getnameinfo(sockaddr: tuple[Any, ...], flags: int) -> Any:
        host = str(sockaddr[0])
        if flags & socket.NI_NUMERICHOST or not _is_literal(host):  # a name is an error without any lookup
            return original(sockaddr, flags)
        if _is_local(host):
            return "localhost", original(sockaddr, flags | socket.NI_NUMERICHOST)[1]
        _record("getnameinfo", host)
        raise socket.gaierror(socket.EAI_FAIL, f"the tests' resolver refused a reverse lookup of {host}")

    return getnameinfo


def _guarded_connect(original: Callable[..., Any], call: str) -> Callable[..., Any]:
    def connect(sock: socket.socket, address: Any) -> Any:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
            host = str(_answer(address[0], call, sock.family))  # the C library would resolve a name itself
            if not _is_local(host):
                _record(call, f"{host} port {address[1]}")
                raise OSError(errno.ENETUNREACH, f"the tests refuse traffic off the machine: {call} to {host}")
            address = (host, *address[1:])
        return original(sock, address)

    return connect


_REPLACEMENTS: dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]] = {
    "getaddrinfo": _getaddrinfo,
    "gethostbyname": _gethostbyname,
    "gethostbyname_ex": _gethostbyname_ex,
    "gethostbyaddr": _gethostbyaddr,
    "getnameinfo": _getnameinfo,
}

if __name__ == "sitecustomize":  # imported by Python at start-up, not by a test
    install_from_environment()
