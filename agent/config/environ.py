"""Environment look-ups for the healthcheck's fast path, which must not import pydantic: AGENT_HOST and AGENT_PORT,
read as the agent reads them, so `healthcheck` dials where `serve` listens.

Everything else reads its configuration through agent.config.load.
"""

from __future__ import annotations

import os
import re

from agent.config.echo import shown
from agent.config.hosts import dial_host, host_problem

DEFAULT_PORT = 8099
DEFAULT_HOST = "0.0.0.0"
_DECIMAL = re.compile(r"^\s*\+?\d+(?:_\d+)*(?:\.0*)?\s*$", re.ASCII)  # what pydantic reads as an int: " 8_099.0 "


def agent_port() -> int:
    """AGENT_PORT (default 8099); ValueError naming the variable when it is not a port from 1 to 65535."""
    raw = os.environ.get("AGENT_PORT")
    if raw is None:
        return DEFAULT_PORT
    port = int(raw.strip().split(".")[0]) if _DECIMAL.match(raw) else 0
    if not 0 < port < 65536:
        raise ValueError(f"AGENT_PORT: {shown(raw)} is not a port: expected a number from 1 to 65535")
    return port


def agent_dial_host() -> str:
    """The address that reaches the agent from inside its task: AGENT_HOST (default 0.0.0.0), a wildcard replaced
    by loopback of its family (0.0.0.0 -> 127.0.0.1, :: -> ::1); ValueError naming AGENT_HOST when it is invalid."""
    host = os.environ.get("AGENT_HOST", DEFAULT_HOST).strip()
    problem = host_problem(host)
    if problem:
        raise ValueError(f"AGENT_HOST: {problem}")
    return dial_host(host)
