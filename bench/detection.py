"""Detection and recovery: inject a fault (refused port, hang, wrong password) in front of the databases and time
how long each signal takes to change and to come back: the agent's db probe_success and /ready, the exporters'
pg_up / mysql_up, and blackbox probe_success. Then show what each says about the cause."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from bench.causes import causes
from bench.common import Service, wait_until
from bench.report import MISSING, Row
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
from bench.watch import (
    AGENT_PERIOD,
    EXPORTER_PERIOD,
    Read,
    Watcher,
    agent_ready_reader,
    agent_success_reader,
    blackbox_reader,
    exporter_reader,
)
from bench.world import MYSQL_PORT, Login, World
from tests.support.fault_proxy import Fault, FaultProxy

SECTION = "Detection"
AGENT_TIMEOUT, FAILURE_THRESHOLD = 5.0, 3  # the agent's defaults, which the bench does not change
COLUMNS = ("agent", "postgres_exporter", "mysqld_exporter", "blackbox_exporter")
Key = tuple[str, str]  # (column, signal)
_GAUGES = {"postgres_exporter": "pg_up", "mysqld_exporter": "mysql_up"}  # each exporter's own up gauge


@dataclass(frozen=True, slots=True)
class Injection:
    """A fault: how to cause it and undo it, and whether a TCP connect can see it at all."""

    name: str
    inject: Callable[[], None]
    clear: Callable[[], None]
    tcp_visible: bool


@dataclass
class Rig:
    """The subjects of one interval's run, all pointed through fault proxies, and a watcher per signal."""

    interval: float
    agents: dict[str, Service]  # engine -> agent
    exporters: dict[str, Service]  # column -> exporter
    watchers: dict[Key, Watcher]
    injections: list[Injection]
    blackbox_port: int  # the PostgreSQL proxy port, for blackbox's debug output


@dataclass(frozen=True, slots=True)
class Outcome:
    """One fault in one run: when it was injected and cleared, and how long each signal took."""

    fault: str
    interval: float
    detected: dict[Key, float | None]
    detected_state: dict[Key, str]
    recovered: dict[Key, float | None]
    causes: dict[str, str]
    detect_cap: float
    recover_cap: float


def detection_rows(world: World, settings: Settings, workdir: Path) -> tuple[list[Row], list[str]]:
    """Every fault at every configured interval; cause rows from the first interval's run."""
    outcomes: list[Outcome] = []
    for interval in settings.detection_intervals:
        with ExitStack() as stack:
            rig = _rig(world, interval, workdir, stack)
            outcomes += [_scenario(rig, injection) for injection in rig.injections]
    rows = [row for outcome in outcomes for row in _timing_rows(outcome)]
    first = settings.detection_intervals[0]
    rows += [_cause_row(o) for o in outcomes if o.interval == first]
    notes = [
        "Detection: faults are injected by a TCP proxy in front of each database (refuse = stop listening and cut"
        " connections; hang = accept and forward nothing) or by changing the password and ending the user's"
        " sessions (as a failover or restart does). The agent is polled every 0.2 s, the exporters every 0.5 s"
        " (in production add the Prometheus scrape interval to their figures, and to the agent's metrics; /ready"
        " is read by the ALB directly). Times are from the injection (or its undoing) to the first answer"
        " showing the change.",
        "Without ending sessions, a password change is seen by the agent at its next fresh login"
        " (AGENT_DB_REAUTH_SECONDS, 300 s by default), and by postgres_exporter and mysqld_exporter only when"
        " their kept connection breaks.",
    ]
    return rows, notes


# -- one run --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Database:
    """One database as a run sees it: the proxy in front, the agent and the exporter behind it, its password."""

    engine: str
    proxy: FaultProxy
    agent: Service
    exporter_column: str
    exporter: Service
    login: Login
    set_password: Callable[[bool, str], None]  # (end sessions too?, new password)


def _rig(world: World, interval: float, workdir: Path, stack: ExitStack) -> Rig:
    databases = [_postgres(world, interval, workdir, stack)]
    if world.mysql_available:
        databases.append(_mariadb(world, interval, workdir, stack))
    blackbox = start_blackbox_exporter(f"bbexp-det-{interval:g}", workdir)
    stack.callback(blackbox.stop)
    _wait_healthy(databases, blackbox)
    watchers = _watchers(databases, blackbox)
    for watcher in watchers.values():
        stack.callback(watcher.stop)
    agents = {db.engine: db.agent for db in databases}
    exporters = {db.exporter_column: db.exporter for db in databases} | {"blackbox_exporter": blackbox}
    return Rig(interval, agents, exporters, watchers, _injections(databases), databases[0].proxy.port)


def _postgres(world: World, interval: float, workdir: Path, stack: ExitStack) -> _Database:
    login = world.pg_role("det")
    proxy = _proxy(world.pg_port, stack)
    agent = _agent(f"agent-det-pg-{interval:g}", pg_dsn(login, proxy.port), login, interval, workdir, stack)
    exporter = start_postgres_exporter(f"pgexp-det-{interval:g}", login, proxy.port, workdir)
    stack.callback(exporter.stop)

    def set_password(kick: bool, password: str) -> None:
        world.set_pg_password(login.user, password, kick)

    return _Database("PostgreSQL", proxy, agent, "postgres_exporter", exporter, login, set_password)


def _mariadb(world: World, interval: float, workdir: Path, stack: ExitStack) -> _Database:
    login = world.mysql_user("det")
    proxy = _proxy(MYSQL_PORT, stack)
    agent = _agent(f"agent-det-my-{interval:g}", mysql_dsn(login, proxy.port), login, interval, workdir, stack)
    exporter = start_mysqld_exporter(f"myexp-det-{interval:g}", login, proxy.port, workdir)
    stack.callback(exporter.stop)

    def set_password(kick: bool, password: str) -> None:
        world.set_mysql_password(login.user, password, kick)

    return _Database("MariaDB", proxy, agent, "mysqld_exporter", exporter, login, set_password)


def _proxy(port: int, stack: ExitStack) -> FaultProxy:
    proxy = FaultProxy("127.0.0.1", port).start()
    stack.callback(proxy.close)
    return proxy


def _agent(name: str, dsn: str, login: Login, interval: float, workdir: Path, stack: ExitStack) -> Service:
    agent = start_agent(AgentSpec(name, password_env(dsn, login), interval=interval), workdir)
    stack.callback(agent.stop)
    return agent


def _wait_healthy(databases: list[_Database], blackbox: Service) -> None:
    for db in databases:
        gauge = _GAUGES[db.exporter_column]
        wait_for(db.agent, partial(agent_ready, db.agent), "/ready 200", timeout=60)
        wait_for(db.exporter, partial(_gauge_is_one, db.exporter, gauge), f"{gauge} 1", timeout=60)
    path = blackbox_path(databases[0].proxy.port)
    wait_for(blackbox, partial(_gauge_is_one, blackbox, "probe_success", path), "probe_success 1", timeout=60)


def _gauge_is_one(service: Service, name: str, path: str = "/metrics") -> bool:
    return metric(service, name, path) == 1.0


def _watchers(databases: list[_Database], blackbox: Service) -> dict[Key, Watcher]:
    readers: dict[Key, tuple[Read, float]] = {}
    for db in databases:
        gauge = _GAUGES[db.exporter_column]
        readers[("agent", f"{db.engine} db probe")] = (agent_success_reader(db.agent), AGENT_PERIOD)
        readers[("agent", f"{db.engine} /ready")] = (agent_ready_reader(db.agent), AGENT_PERIOD)
        readers[(db.exporter_column, gauge)] = (exporter_reader(db.exporter, gauge), EXPORTER_PERIOD)
        blackbox_read = blackbox_reader(blackbox, db.proxy.port)
        readers[("blackbox_exporter", f"{db.engine} port")] = (blackbox_read, EXPORTER_PERIOD)
    # Sorted by column, so each table cell lists PostgreSQL before MariaDB.
    ordered = sorted(readers.items(), key=lambda item: COLUMNS.index(item[0][0]))
    return {key: Watcher(f"{key[0]} {key[1]}", read, period).start() for key, (read, period) in ordered}


def _injections(databases: list[_Database]) -> list[Injection]:
    def proxied(fault: Fault) -> Callable[[], None]:
        def switch() -> None:
            for db in databases:
                db.proxy.set(fault)

        return switch

    def wrong_password() -> None:
        for db in databases:
            db.set_password(True, secrets.token_urlsafe(18))

    def right_password() -> None:
        for db in databases:
            db.set_password(False, db.login.password)

    return [
        Injection("port refused", proxied(Fault.REFUSE), proxied(Fault.PASS), tcp_visible=True),
        Injection("database hangs", proxied(Fault.HANG), proxied(Fault.PASS), tcp_visible=False),
        Injection("wrong password", wrong_password, right_password, tcp_visible=False),
    ]


def _scenario(rig: Rig, injection: Injection) -> Outcome:
    # A hung probe takes its whole timeout, so runs are at least that far apart while the database hangs.
    detect_cap = FAILURE_THRESHOLD * max(rig.interval, AGENT_TIMEOUT) * 1.1 + AGENT_TIMEOUT + 5
    recover_cap = 2 * rig.interval + AGENT_TIMEOUT + 5
    offsets = {column: service.log_size() for column, service in rig.exporters.items()}
    watched = [key for key in rig.watchers if injection.tcp_visible or key[0] != "blackbox_exporter"]
    injected = time.monotonic()
    injection.inject()
    wait_until(lambda: all(rig.watchers[k].first_after(injected, False) for k in watched), detect_cap, 0.1)
    said = causes(rig.agents, rig.exporters, rig.watchers, offsets, rig.blackbox_port)
    changed = {k: w.first_after(injected, False) for k, w in rig.watchers.items()}
    cleared = time.monotonic()
    injection.clear()
    moved = [k for k, reading in changed.items() if reading is not None]
    wait_until(lambda: all(rig.watchers[k].first_after(cleared, True) for k in moved), recover_cap, 0.1)
    wait_until(lambda: all(_healthy_now(w) for w in rig.watchers.values()), recover_cap, 0.1)
    recovered = {k: rig.watchers[k].first_after(cleared, True) for k in moved}
    return Outcome(
        fault=injection.name,
        interval=rig.interval,
        detected={k: (r.at - injected if r else None) for k, r in changed.items()},
        detected_state={k: r.state for k, r in changed.items() if r},
        recovered={k: (r.at - cleared if r else None) for k, r in recovered.items()},
        causes=said,
        detect_cap=detect_cap,
        recover_cap=recover_cap,
    )


def _healthy_now(watcher: Watcher) -> bool:
    latest = watcher.latest()
    return latest is not None and latest.healthy


# -- rows -----------------------------------------------------------------------------------------------------


def _timing_rows(outcome: Outcome) -> Iterator[Row]:
    label = f"{outcome.fault}, agent interval {outcome.interval:g} s"
    yield Row(SECTION, f"{label}: time to change", *_cells(outcome, outcome.detected, outcome.detect_cap, True))
    yield Row(SECTION, f"{label}: time back", *_cells(outcome, outcome.recovered, outcome.recover_cap, False))


def _cells(outcome: Outcome, times: dict[Key, float | None], cap: float, detecting: bool) -> list[str]:
    cells = []
    for column in COLUMNS:
        keys = [k for k in outcome.detected if k[0] == column]
        if not keys:
            cells.append(MISSING)
            continue
        parts = [_timing(key, times.get(key), cap, outcome, detecting) for key in keys]
        cells.append("; ".join(parts))
    return cells


def _timing(key: Key, seconds: float | None, cap: float, outcome: Outcome, detecting: bool) -> str:
    signal = key[1]
    if not detecting and outcome.detected.get(key) is None:
        return f"{signal}: never changed"
    if seconds is None:
        return f"{signal}: no change in {cap:.0f} s"
    state = f" ({outcome.detected_state[key]})" if detecting and key in outcome.detected_state else ""
    return f"{signal}: {seconds:.1f} s{state}"


def _cause_row(outcome: Outcome) -> Row:
    cells = [outcome.causes.get(column, MISSING) for column in COLUMNS]
    return Row(SECTION, f"{outcome.fault}: what each one says", *cells)
