"""The state dump an operator asks for with SIGUSR1 (or SIGUSR2): one log line, whatever the log level."""

from __future__ import annotations

import logging
import os

from agent.outputs.log_queue import running_writer
from agent.outputs.server import status_body
from agent.runtime.state import Snapshot

_dump = logging.getLogger("agent.dump")
_dump.setLevel(logging.INFO)  # asked for by a signal: shown even at AGENT_LOG_LEVEL=error


def log_state_dump(signame: str, snapshot: Snapshot | None, http_connections: int | None) -> None:
    """Log what /status says (full detail, as the change log does), open descriptors, HTTP connections and the
    log lines dropped so far, as one JSON line of logger `agent.dump`."""
    writer = running_writer()
    dump: dict[str, object] = {
        "signal": signame,
        "open_fds": _open_fds(),
        "http_connections": http_connections,
        "log_lines_dropped": writer.dropped() if writer is not None else None,
        "report": status_body(snapshot, full=True) if snapshot is not None else None,
    }
    _dump.info("state dump on %s", signame, extra={"dump": dump})


def _open_fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # not Linux
        return None
