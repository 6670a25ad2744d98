"""Cold start (process start to the first /ready 200) and what a running agent has imported."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import Service, get
from bench.report import MISSING, Row, verdict
from bench.settings import Settings
from bench.subjects import (
    AgentSpec,
    agent_ready,
    blackbox_path,
    metric,
    mysql_dsn,
    password_env,
    pg_dsn,
    start_agent,
    start_blackbox_exporter,
    start_mysqld_exporter,
    start_postgres_exporter,
    wait_for,
)
from bench.world import MYSQL_PORT, World

SECTION = "Cold start"
COLD_START_LIMIT = 1.0  # with a password (issue #16; was 1.5 s in issue #6)
# Modules an agent must not load when its configuration does not use them (import cost and memory).
FORBIDDEN = {
    "PostgreSQL": ("aiomysql", "pymysql", "aiobotocore", "botocore"),
    "MariaDB": ("asyncpg", "aiobotocore", "botocore"),
}


def cold_start_rows(world: World, settings: Settings, workdir: Path) -> tuple[list[Row], list[str]]:
    """Median start-to-healthy time of the agent (two configurations) and of each exporter."""
    pg_login, sm_login = world.pg_role("cold"), world.pg_role("coldsm")
    password = AgentSpec("agent-cold-pg", password_env(pg_dsn(pg_login, world.pg_port), pg_login))
    secret_env = {"AGENT_DB_DSN": pg_dsn(sm_login, world.pg_port), "AGENT_DB_SECRET_ID": world.secret_for(sm_login)}
    secret = AgentSpec("agent-cold-sm", {**secret_env, **world.aws_env()})
    runs = settings.cold_starts
    agent_pg = _median([_agent_start(password, workdir) for _ in range(runs)])
    agent_sm = _median([_agent_start(secret, workdir) for _ in range(runs)])
    exporters = [_median([start() for _ in range(runs)]) for start in _exporter_starts(world, workdir)]
    postgres, mysqld, blackbox = (f"{t:.2f} s" if t == t else MISSING for t in exporters)  # NaN: no MariaDB
    row = Row(
        SECTION,
        f"process start to first healthy answer (median of {runs})",
        f"password {agent_pg:.2f} s; Secrets Manager + STS {agent_sm:.2f} s",
        postgres,
        mysqld,
        blackbox,
        target=f"≤ {COLD_START_LIMIT:g} s with a password",
        verdict=verdict(agent_pg, COLD_START_LIMIT, " s"),
    )
    note = (
        "Cold start: from just before the process is started to the first /ready 200 (agent; a real login and"
        " SELECT 1 included) or the first scrape saying pg_up 1 / mysql_up 1 / probe_success 1 (exporters),"
        " polled every 10 ms."
    )
    return [row, _imports_row(world, workdir)], [note]


def _agent_start(spec: AgentSpec, workdir: Path) -> float:
    agent = start_agent(spec, workdir)
    try:
        wait_for(agent, lambda: agent_ready(agent), "/ready 200", timeout=15)
        return time.monotonic() - agent.started_at
    finally:
        agent.stop()


def _exporter_starts(world: World, workdir: Path) -> list[Callable[[], float]]:
    """One start-and-time function per exporter column (NaN for mysqld_exporter without MariaDB)."""
    login = world.pg_role("coldexp")

    def postgres() -> float:
        service = start_postgres_exporter("pgexp-cold", login, world.pg_port, workdir)
        return _time_until(service, lambda: metric(service, "pg_up") == 1.0)

    def mysqld() -> float:
        if my_login is None:
            return float("nan")
        service = start_mysqld_exporter("myexp-cold", my_login, MYSQL_PORT, workdir)
        return _time_until(service, lambda: metric(service, "mysql_up") == 1.0)

    def blackbox() -> float:
        service = start_blackbox_exporter("bbexp-cold", workdir)
        return _time_until(service, lambda: metric(service, "probe_success", blackbox_path(world.pg_port)) == 1.0)

    my_login = world.mysql_user("coldexp") if world.mysql_available else None
    return [postgres, mysqld, blackbox]


def _time_until(service: Service, healthy: Callable[[], bool]) -> float:
    try:
        wait_for(service, healthy, "a healthy scrape", timeout=15)
        return time.monotonic() - service.started_at
    finally:
        service.stop()


def _median(values: list[float]) -> float:
    return statistics.median(values)


# -- what a running agent imported ---------------------------------------------------------------------------


def _imports_row(world: World, workdir: Path) -> Row:
    """Run a PostgreSQL-only and a MariaDB-only agent under `-X importtime` through a few probe runs and every
    endpoint; list any module it should not have loaded."""
    pg_login = world.pg_role("imp")
    specs = {"PostgreSQL": AgentSpec("agent-imports-pg", password_env(pg_dsn(pg_login, world.pg_port), pg_login))}
    if world.mysql_available:
        my_login = world.mysql_user("imp")
        specs["MariaDB"] = AgentSpec("agent-imports-mysql", password_env(mysql_dsn(my_login, MYSQL_PORT), my_login))
    cells, offenders = [], []
    for engine, spec in specs.items():
        modules = _imported(spec, workdir)
        loaded = sorted(m for m in FORBIDDEN[engine] if m in modules)
        offenders += loaded
        absent = "/".join(FORBIDDEN[engine])
        cells.append(f"{engine}-only: {len(modules)} modules, " + (f"LOADED {loaded}" if loaded else f"no {absent}"))
    return Row(
        "Footprint",
        "modules a one-engine, password-only agent loads (`-X importtime`, after probes and every endpoint)",
        "; ".join(cells),
        target="only what the config uses",
        verdict="met" if not offenders else f"MISSED: {', '.join(offenders)}",
    )


def _imported(spec: AgentSpec, workdir: Path) -> set[str]:
    traced = AgentSpec(spec.name, spec.env, python_flags=("-X", "importtime"), interval=1.0)
    agent = start_agent(traced, workdir)
    try:
        wait_for(agent, lambda: agent_ready(agent), "/ready 200")
        for path in ("/health", "/ready", "/status", "/metrics", "/"):
            get(agent.url(path))
        time.sleep(2.5)  # a few more probe runs on the kept connection
    finally:
        agent.stop()
    lines = agent.log_path.read_text(errors="replace").splitlines()
    return {line.rsplit("|", 1)[-1].strip() for line in lines if line.startswith("import time:")} - {"imported package"}
