"""Footprint (issue #16): RSS after probing at 1 s with its breakdown by step, idle CPU at the default interval,
both beside the exporters, and the agent's installed size. `python -m bench --only footprint` runs it alone."""

from __future__ import annotations

import dataclasses
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from agent.config.models import AgentConfig
from bench.breakdown import breakdown_rows, start_breakdown
from bench.common import MIB, PYTHON, REPO, Service, cpu_seconds, memory_bytes, run
from bench.report import MISSING, Row, verdict
from bench.settings import Settings
from bench.subjects import (
    BLACKBOX_EXPORTER,
    MYSQLD_EXPORTER,
    POSTGRES_EXPORTER,
    AgentSpec,
    agent_probed,
    agent_ready,
    blackbox_path,
    mysql_dsn,
    password_env,
    pg_dsn,
    scrape,
    start_agent,
    start_blackbox_exporter,
    start_mysqld_exporter,
    start_postgres_exporter,
    wait_for,
)
from bench.world import MYSQL_PORT, REGION, World

SECTION = "Footprint"
# Issue #16's targets: RSS after 60 s of probing at a 1 s interval; idle CPU at the default interval.
RSS_LIMIT_MIB = 64.0  # every feature on
PG_RSS_LIMIT_MIB = 48.0  # PostgreSQL with a password
CPU_LIMIT_PERCENT = 0.25
PROBE_INTERVAL = 1.0
DEFAULT_INTERVAL = float(AgentConfig.model_fields["interval_seconds"].default)
EVERY_FEATURE = "agent-all"
PG_AGENT = "agent-pg"
# The databases are named, not numbered: each login resolves its host on the resolver's thread pool, as an RDS
# endpoint would be (its threads' glibc arenas are part of what is measured).
DB_HOST = "localhost"


@dataclass(frozen=True, slots=True)
class Subject:
    """A running process to measure, and the requests a monitoring system would send it."""

    service: Service
    paths: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Usage:
    """One process over the window: CPU as % of one core, resident memory at the end and at its peak."""

    cpu_percent: float
    rss_mib: float
    peak_mib: float


def every_feature_spec(world: World, interval: float = DEFAULT_INTERVAL) -> AgentSpec:
    """Secrets Manager + STS + ECS credentials endpoint for a real login, an IAM target whose login fails
    (a plain PostgreSQL cannot accept an RDS token, but the token is still signed every cadence), and EMF."""
    app, iam = world.pg_role("all"), world.pg_role("iam")
    connections = {
        "app": {"dsn": pg_dsn(app, world.pg_port, host=DB_HOST), "secret_id": world.secret_for(app)},
        "iam": {
            "dsn": pg_dsn(iam, world.pg_port, query="sslmode=require", host=DB_HOST),
            "aws_iam_auth": {"enabled": True, "region": REGION},
        },
    }
    env = {**world.aws_env(), "AGENT_CLOUDWATCH_EMF": "true"}
    return AgentSpec(EVERY_FEATURE, env, config={"database": {"connections": connections}}, interval=interval)


def pg_password_spec(world: World, interval: float = DEFAULT_INTERVAL) -> AgentSpec:
    """One PostgreSQL target with a static password: the commonest setup."""
    login = world.pg_role("fp")
    return AgentSpec(PG_AGENT, password_env(pg_dsn(login, world.pg_port, host=DB_HOST), login), interval=interval)


def footprint_rows(world: World, settings: Settings, workdir: Path) -> tuple[list[Row], list[str]]:
    """RSS after probing at 1 s (beside the RSS breakdown), idle CPU at the default interval, install size."""
    window = settings.footprint_seconds
    breakdown = start_breakdown(every_feature_spec(world, PROBE_INTERVAL), window, workdir)
    try:
        probing = _window(world, workdir, PROBE_INTERVAL, PROBE_INTERVAL, window)
    finally:
        steps = breakdown_rows(breakdown)
    idle = _window(world, workdir, DEFAULT_INTERVAL, settings.scrape_every, window)
    rows = [*_rss_rows(probing, window), *steps, _cpu_row(idle, window), _install_row(workdir)]
    notes = [
        f"Footprint, RSS: every subject ran at once, probing every {PROBE_INTERVAL:g} s (agents:"
        f" AGENT_INTERVAL_SECONDS; exporters: scraped every {PROBE_INTERVAL:g} s, which is when they probe), for"
        f" {window:g} s after it was up; agents' /ready and /metrics requested as often. RSS is VmRSS at the end,"
        " peak is VmHWM.",
        f"Footprint, CPU: the same subjects started again at the agent's default interval ({DEFAULT_INTERVAL:g} s),"
        f" each requested every {settings.scrape_every:g} s; utime+stime over {window:g} s from /proc/PID/stat.",
        "Every feature on = one agent with two targets from a YAML file: `app` logs in with the password of a"
        " Secrets Manager secret (moto), credentials from an ECS container-credentials endpoint, verified with"
        " STS; `iam` signs an RDS IAM token and its login fails (PostgreSQL is not RDS), plus CloudWatch EMF."
        f" The agents' databases are reached as `{DB_HOST}` (a name, resolved on the thread pool).",
        "RSS by step: bench/rss_steps.py imports what serve imports, one group at a time, then runs"
        " agent.app.serve() in the same process with the every-feature configuration, reading VmRSS at each step"
        " (hooks on AwsClients and the first-round observer); it ran beside the subjects above. The last readings"
        " are what malloc_trim(0) and then clearing botocore's loader caches would free (nothing the agent does).",
    ]
    return rows, notes


def _window(world: World, workdir: Path, interval: float, every: float, seconds: float) -> dict[str, Usage]:
    with ExitStack() as stack:
        subjects = _start_subjects(world, workdir, stack, interval)
        return _measure(subjects, every, seconds)


def _start_subjects(world: World, workdir: Path, stack: ExitStack, interval: float) -> dict[str, Subject]:
    pg_spec = pg_password_spec(world, interval)
    specs = [pg_spec, every_feature_spec(world, interval)]
    pg_login = world.pg_role("fpx")
    services: dict[str, Subject] = {}
    exporters: list[tuple[Service, tuple[str, ...]]] = [
        (start_postgres_exporter("postgres_exporter", pg_login, world.pg_port, workdir), ("/metrics",)),
        (start_blackbox_exporter("blackbox_exporter", workdir), (blackbox_path(world.pg_port),)),
    ]
    if world.mysql_available:
        my_login = world.mysql_user("fp")
        dsn = mysql_dsn(my_login, MYSQL_PORT)
        specs.append(AgentSpec("agent-mysql", password_env(dsn, my_login), interval=interval))
        exporters.append((start_mysqld_exporter("mysqld_exporter", my_login, MYSQL_PORT, workdir), ("/metrics",)))
    for service, paths in exporters:
        stack.callback(service.stop)
        services[service.name] = Subject(service, paths)
    for spec in specs:
        agent = start_agent(spec, workdir)
        stack.callback(agent.stop)
        services[spec.name] = Subject(agent, ("/ready", "/metrics"))
    for subject in services.values():
        wait_up(subject)
    return services


def wait_up(subject: Subject) -> None:
    service = subject.service
    if service.name == EVERY_FEATURE:  # its IAM target never logs in: /ready stays 503, by design
        wait_for(service, lambda: agent_probed(service), "every probe run once")
    elif service.name.startswith("agent"):
        wait_for(service, lambda: agent_ready(service), "/ready 200")
    else:
        wait_for(service, lambda: scrape(service, subject.paths[0]).status == 200, "a first scrape")


def _measure(subjects: dict[str, Subject], every: float, seconds: float) -> dict[str, Usage]:
    start = {name: cpu_seconds(s.service.pid) for name, s in subjects.items()}
    with scraping(list(subjects.values()), every) as stop:
        stop.wait(seconds)
    usage = {}
    for name, subject in subjects.items():
        pid = subject.service.pid
        busy = cpu_seconds(pid) - start[name]
        usage[name] = Usage(
            cpu_percent=100 * busy / seconds,
            rss_mib=memory_bytes(pid) / MIB,
            peak_mib=memory_bytes(pid, "VmHWM") / MIB,
        )
    return usage


@contextmanager
def scraping(subjects: list[Subject], every: float) -> Iterator[threading.Event]:
    """Request each subject's paths every `every` seconds on a thread, as Prometheus and an ALB would."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            for subject in subjects:
                for path in subject.paths:
                    scrape(subject.service, path)
            stop.wait(every)

    thread = threading.Thread(target=loop, name="scraper", daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(timeout=15)


def _rss_rows(usage: dict[str, Usage], window: float) -> list[Row]:
    after = f"after {window:g} s of probing at a {PROBE_INTERVAL:g} s interval"
    pg, everything = usage[PG_AGENT], usage[EVERY_FEATURE]
    rss = _row(usage, f"RSS {after}, one target, password", lambda u: f"{u.rss_mib:.1f} MiB", PG_AGENT)
    return [
        dataclasses.replace(
            rss, target=f"PostgreSQL ≤ {PG_RSS_LIMIT_MIB:g} MiB", verdict=verdict(pg.rss_mib, PG_RSS_LIMIT_MIB, " MiB")
        ),
        Row(
            SECTION,
            f"RSS {after}, every feature on",
            f"{everything.rss_mib:.1f} MiB",
            target=f"≤ {RSS_LIMIT_MIB:g} MiB",
            verdict=verdict(everything.rss_mib, RSS_LIMIT_MIB, " MiB"),
        ),
        _row(usage, "peak RSS (VmHWM)", lambda u: f"{u.peak_mib:.1f} MiB", PG_AGENT, EVERY_FEATURE),
    ]


def _row(usage: dict[str, Usage], measure: str, show: Callable[[Usage], str], *agents: str) -> Row:
    """A row with the agent cell(s) first and each exporter's figure in its column."""
    agent_cell = "; ".join(f"{_label(name)} {show(usage[name])}" for name in (*agents, "agent-mysql") if name in usage)
    cells = [show(usage[name]) if name in usage else MISSING for name in _EXPORTERS]
    return Row(SECTION, measure, agent_cell, *cells)


def _cpu_row(usage: dict[str, Usage], window: float) -> Row:
    measure = f"idle CPU over {window:g} s at the default {DEFAULT_INTERVAL:g} s interval, % of one core"
    row = _row(usage, measure, _cpu, PG_AGENT, EVERY_FEATURE)
    worst = max(usage[name].cpu_percent for name in usage if name.startswith("agent"))
    return dataclasses.replace(
        row, target=f"≤ {CPU_LIMIT_PERCENT:g} %", verdict=verdict(worst, CPU_LIMIT_PERCENT, " %")
    )


_EXPORTERS = ("postgres_exporter", "mysqld_exporter", "blackbox_exporter")
_LABELS = {PG_AGENT: "PostgreSQL", "agent-mysql": "MariaDB", EVERY_FEATURE: "every feature"}


def _label(name: str) -> str:
    return _LABELS.get(name, name)


def _cpu(usage: Usage) -> str:
    return f"{usage.cpu_percent:.2f} %"


# -- install size ---------------------------------------------------------------------------------------------


def _install_row(workdir: Path) -> Row:
    agent = _venv_install_size(workdir)
    exporters = [_debian_size(path) for path in (POSTGRES_EXPORTER, MYSQLD_EXPORTER, BLACKBOX_EXPORTER)]
    return Row(SECTION, "install size (agent: `pip install .` into a venv; exporters: the package)", agent, *exporters)


def _venv_install_size(workdir: Path) -> str:
    """Size of a fresh venv after a non-editable `pip install .`, minus an empty venv, and its largest parts.

    The source is copied first: an in-tree build would leave build/ in the shared work tree.
    """
    source = workdir / "install-src"
    shutil.copytree(REPO / "agent", source / "agent", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    empty, full = workdir / "venv-empty", workdir / "venv-full"
    for venv in (empty, full):
        run([PYTHON, "-m", "venv", str(venv)], timeout=120)
    pip = [str(full / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(source)]
    done = run(pip, timeout=600)
    if done.returncode != 0:
        return f"n/a (pip install failed: {done.stderr.strip()[-200:]})"
    size = (_tree_bytes(full) - _tree_bytes(empty)) / MIB
    return f"{size:.0f} MiB (largest, MiB: {_largest(full, empty)})"


def _largest(venv: Path, empty: Path, count: int = 4) -> str:
    """The biggest packages the install added (pip itself is in the empty venv too)."""
    site, bare = (next(v.glob("lib/python*/site-packages")) for v in (venv, empty))
    added = [p for p in site.iterdir() if p.is_dir() and not (bare / p.name).exists()]
    sizes = sorted(((_tree_bytes(p), p.name) for p in added), reverse=True)
    return ", ".join(f"{name} {size / MIB:.0f}" for size, name in sizes[:count])


def _tree_bytes(root: Path) -> int:
    """Apparent size of every file under root (what an image layer would hold)."""
    return sum(p.lstat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def _debian_size(binary: str) -> str:
    package = Path(binary).name
    done = run(["dpkg-query", "-W", "-f=${Installed-Size}", package], timeout=30)
    if done.returncode != 0 or not done.stdout.strip().isdigit():
        return "n/a"
    return f"{int(done.stdout) / 1024:.0f} MiB (one static binary)"
