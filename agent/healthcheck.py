"""`ecs-health-agent healthcheck`: the ECS container healthCheck command for images without curl.

Kept tiny and fast to import (stdlib http.client only): ECS runs it every interval inside the task.
"""

from __future__ import annotations

import http.client
import sys
import time

from agent.config.hosts import address

DEFAULT_TIMEOUT_SECONDS = 2.0  # the shortest timeout an ECS container healthCheck can have


def healthcheck(
    port: int, ready: bool = False, host: str = "127.0.0.1", timeout: float = DEFAULT_TIMEOUT_SECONDS
) -> int:
    """GET /health (or /ready) on the local agent: 0 on HTTP 200, 1 otherwise, within `timeout` in total."""
    path = "/ready" if ready else "/health"
    where = address(host, port)
    deadline = time.monotonic() + timeout
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.connect()
        _limit(connection, deadline)
        connection.request("GET", path, headers={"User-Agent": "ecs-health-agent-healthcheck"})
        _limit(connection, deadline)
        response = connection.getresponse()
        _limit(connection, deadline)
        response.read(65536)
        code = response.status
    except (OSError, http.client.HTTPException) as exc:  # refused, timeout, reset, not HTTP
        print(f"healthcheck: GET {path} on {where}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        connection.close()
    if code != 200:
        print(f"healthcheck: GET {path} on {where}: HTTP {code}", file=sys.stderr)
        return 1
    return 0


def _limit(connection: http.client.HTTPConnection, deadline: float) -> None:
    """Shrink the socket timeout to what is left, so every step together stays within the deadline."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("healthcheck deadline passed")
    if connection.sock is not None:
        connection.sock.settimeout(remaining)
