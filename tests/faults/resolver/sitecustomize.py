"""A hosts file the fault tests control, for the agent process only (put this directory on PYTHONPATH).

Python imports `sitecustomize` at start-up. When EHA_TEST_HOSTS_FILE names a JSON file ({"name": "address"}),
a lookup of a name in that file resolves its address instead; every other name, and a name removed from the
file, goes to the system resolver unchanged. The file is read on every lookup, as glibc reads /etc/hosts, so a
test makes a name stop resolving by removing it: the agent then gets the system resolver's own answer for a
`.test` name (RFC 2606: never delegated), a real `socket.gaierror`. No agent code knows about this.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any

_FILE = os.environ.get("EHA_TEST_HOSTS_FILE")


def _install(path: str) -> None:
    system = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        try:
            with open(path, encoding="utf-8") as file:
                table = json.load(file)
        except (OSError, ValueError):
            table = {}
        return system(table.get(name, host), *args, **kwargs)

    socket.getaddrinfo = getaddrinfo


if _FILE:
    _install(_FILE)
