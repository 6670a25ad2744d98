"""Scale within one agent: 1, 10 and 50 targets (one role each, same PostgreSQL) at a 1 s interval."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import MIB, cpu_seconds, memory_bytes
from bench.report import Row
from bench.settings import Settings
from bench.subjects import AgentSpec, agent_ready, pg_dsn, start_agent, wait_for
from bench.world import Login, World

SECTION = "Scale"
INTERVAL = 1.0
SETTLE_SECONDS = 3.0  # after /ready: every target has logged in; let the first runs' garbage settle


@dataclass(frozen=True, slots=True)
class Load:
    """One agent probing `targets` databases: CPU as % of one core over the window, and RSS at its end."""

    targets: int
    cpu_percent: float
    rss_mib: float


def scale_rows(world: World, settings: Settings, workdir: Path) -> tuple[list[Row], list[str]]:
    """CPU and RSS per target count, and the growth per added target."""
    logins = [world.pg_role("scale") for _ in range(max(settings.scale_targets))]
    loads = [_measure(world, logins[:n], settings.scale_seconds, workdir) for n in settings.scale_targets]
    cells = "; ".join(f"{x.targets}: {x.cpu_percent:.1f} %, {x.rss_mib:.1f} MiB" for x in loads)
    first, last = loads[0], loads[-1]
    added = last.targets - first.targets
    growth = (
        f"CPU +{(last.cpu_percent - first.cpu_percent) / added:.2f} % of a core and RSS"
        f" +{(last.rss_mib - first.rss_mib) / added:.2f} MiB per target"
    )
    rows = [
        Row(SECTION, f"targets: CPU (% of one core) and RSS at a {INTERVAL:g} s interval", cells),
        Row(SECTION, f"growth per target ({first.targets} to {last.targets})", growth),
    ]
    note = (
        f"Scale: one agent with N targets from a YAML file (database.connections, each its own role and password"
        f" on the same PostgreSQL, TLS), interval {INTERVAL:g} s, each probe pinging its kept connection; CPU"
        f" over {settings.scale_seconds:g} s once /ready said 200, RSS at the end; no HTTP requests meanwhile."
    )
    return rows, [note]


def _measure(world: World, logins: list[Login], seconds: float, workdir: Path) -> Load:
    connections = {f"t{i:02d}": {"dsn": pg_dsn(login, world.pg_port, password=True)} for i, login in enumerate(logins)}
    spec = AgentSpec(f"agent-scale-{len(logins)}", {}, config={"database": {"connections": connections}}, interval=1)
    agent = start_agent(spec, workdir)
    try:
        wait_for(agent, lambda: agent_ready(agent), "/ready 200", timeout=60)
        time.sleep(SETTLE_SECONDS)
        before = cpu_seconds(agent.pid)
        time.sleep(seconds)
        busy = cpu_seconds(agent.pid) - before
        return Load(len(logins), 100 * busy / seconds, memory_bytes(agent.pid) / MIB)
    finally:
        agent.stop()
