"""Environment look-ups for the healthcheck's fast path, which must not import pydantic.

Everything else reads its configuration through agent.config.load.
"""

from __future__ import annotations

import os

DEFAULT_PORT = 8099


def agent_port() -> int:
    """AGENT_PORT if it is a valid port, else the default (the agent itself validates it strictly)."""
    raw = os.environ.get("AGENT_PORT", "")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 65536 else DEFAULT_PORT
