"""What each subject says about a fault's cause: the agent's reason and message from /status, the exporters'
gauge beside the error line of their log, blackbox's probe_success beside its debug output."""

from __future__ import annotations

import json
import re

from bench.common import Service, get
from bench.subjects import blackbox_path
from bench.watch import Watcher


def causes(
    agents: dict[str, Service],
    exporters: dict[str, Service],
    watchers: dict[tuple[str, str], Watcher],
    offsets: dict[str, int],
    blackbox_port: int,
) -> dict[str, str]:
    """What each one said once the fault was in place: the agent's reason, the exporters' gauge and log line."""
    said = {"agent": "; ".join(f"{engine}: {_agent_cause(agent)}" for engine, agent in agents.items())}
    for column, service in exporters.items():
        if column == "blackbox_exporter":
            said[column] = _blackbox_cause(service, blackbox_port)
            continue
        # The gauge as the watcher last saw it: scraping again could take the whole scrape timeout.
        seen = next((w.latest() for k, w in watchers.items() if k[0] == column), None)
        logged = _last_error(service.log_since(offsets[column])) or "nothing"
        said[column] = f"{seen.state if seen else '?'}; log: {logged}"
    return said


def _agent_cause(agent: Service) -> str:
    reply = get(agent.url("/status"), timeout=2.0)
    if reply.status != 200:
        return f"/status: {reply.status or reply.error}"
    body = json.loads(reply.body)
    db = next((p for p in body["probes"] if p["probe"] == "db"), None)
    if db is None or db["ok"]:
        return f"db probe ok; /ready {body['status']}"
    return f"/ready {body['status']}, reason {db['reason']} ({db['code']}): {_clip(db.get('message') or '', 90)}"


def _blackbox_cause(blackbox: Service, port: int) -> str:
    text = get(blackbox.url(blackbox_path(port, debug=True)), timeout=10.0).text()
    success = re.search(r"^probe_success (\S+)", text, re.M)
    verdict = f"probe_success {success.group(1)}" if success else "no probe_success"
    error = _last_error(text)
    return verdict + (f"; {error}" if error else "")


def _last_error(log: str) -> str:
    """The last error line's err (preferring lines that carry one: "Probe failed" alone says nothing)."""
    errors = [line for line in log.splitlines() if "level=error" in line]
    detailed = [line for line in errors if "err=" in line] or errors
    return _clip(_logfmt_message(detailed[-1])) if detailed else ""


def _logfmt_message(line: str) -> str:
    """The err of a go-kit logfmt line (what went wrong), else its msg, else the line."""
    fields = {m.group(1): m.group(2) for m in re.finditer(r'\b(msg|err)="((?:[^"\\]|\\.)*)"', line)}
    return fields.get("err") or fields.get("msg") or line


def _clip(text: str, limit: int = 110) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
