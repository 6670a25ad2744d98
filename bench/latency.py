"""Endpoint latency under load: wrk against /ready and /metrics while probes run, and while the database hangs."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from bench.common import REPO, Service, get, run
from bench.report import Row, verdict
from bench.settings import Settings
from bench.subjects import (
    AgentSpec,
    agent_ready,
    blackbox_path,
    password_env,
    pg_dsn,
    start_agent,
    start_blackbox_exporter,
    start_mysqld_exporter,
    start_postgres_exporter,
    wait_for,
)
from bench.world import MYSQL_PORT, World
from tests.support.fault_proxy import Fault, FaultProxy

SECTION = "Latency"
PACE_SCRIPT = REPO / "bench" / "wrk_pace.lua"
PACED_CONNECTIONS, PACE_MS = 10, 9  # 10 connections x (9 ms pause + ~1 ms latency) ~ 1,000 requests/s
READY_P99_MS = 5.0
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_DURATION = r"([\d.]+)(us|ms|s|m)"
SEE_ABOVE = "see the rows above"


@dataclass(frozen=True, slots=True)
class WrkResult:
    """What one wrk run reported."""

    requests: int
    seconds: float
    requests_per_second: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int = 0
    socket_errors: int = 0

    def summary(self) -> str:
        """e.g. `985 req/s, p50 0.61 ms, p99 1.9 ms`, plus errors if any."""
        text = f"{_rate(self.requests_per_second)}, p50 {_ms(self.p50_ms)}, p99 {_ms(self.p99_ms)}"
        if self.non_2xx:
            text += f", {self.non_2xx} non-2xx"
        if self.socket_errors:
            text += f", {self.socket_errors} socket errors"
        return text


def parse_wrk(output: str) -> WrkResult:
    """Parse `wrk --latency` output (wrk 4); ValueError if it holds no result."""
    done = re.search(r"(\d+) requests in " + _DURATION, output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if done is None or rate is None:
        raise ValueError(f"not wrk --latency output: {output[-300:]!r}")
    percentiles = {int(p): _to_ms(v, u) for p, v, u in re.findall(r"^\s+(\d+)%\s+" + _DURATION, output, re.M)}
    latency = re.search(r"Latency\s+" + _DURATION + r"\s+" + _DURATION + r"\s+" + _DURATION, output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return WrkResult(
        requests=int(done.group(1)),
        seconds=_to_ms(done.group(2), done.group(3)) / 1000,
        requests_per_second=float(rate.group(1)),
        p50_ms=percentiles.get(50, float("nan")),
        p90_ms=percentiles.get(90, float("nan")),
        p99_ms=percentiles.get(99, float("nan")),
        max_ms=_to_ms(latency.group(5), latency.group(6)) if latency else float("nan"),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
    )


def run_wrk(url: str, connections: int, seconds: int, pace_ms: int | None = None) -> WrkResult:
    """One wrk run (2 threads); paced with bench/wrk_pace.lua when `pace_ms` is given."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed: run bench/setup.sh")
    argv = [wrk, "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    if pace_ms is not None:
        argv += ["-s", str(PACE_SCRIPT), url, "--", str(pace_ms)]
    else:
        argv.append(url)
    done = run(argv, timeout=seconds + 30)
    return parse_wrk(done.stdout)


def latency_rows(world: World, settings: Settings, workdir: Path) -> tuple[list[Row], list[str]]:
    """Every latency row: the agent at ~1,000 req/s and flat out, normal and hung; the exporters flat out."""
    login = world.pg_role("lat")
    proxy = FaultProxy("127.0.0.1", world.pg_port).start()
    spec = AgentSpec("agent-latency", password_env(pg_dsn(login, proxy.port), login), interval=1.0)
    agent = start_agent(spec, workdir)
    rows: list[Row] = []
    notes: list[str] = []
    try:
        wait_for(agent, lambda: agent_ready(agent), "/ready 200")
        for hung in (False, True):
            proxy.set(Fault.HANG if hung else Fault.PASS)
            time.sleep(2.0 if hung else 0.0)  # let a probe start and hang on the kept connection first
            rows += _agent_rows(agent, settings, hung)
            if hung:
                notes.append(f"While the database hung, the agent's db probe said: {_db_state(agent)}.")
        proxy.set(Fault.PASS)
    finally:
        agent.stop()
        proxy.close()
    rows.append(_exporters_row(world, settings, workdir))
    return rows, notes


def _agent_rows(agent: Service, settings: Settings, hung: bool) -> Iterator[Row]:
    when = " while the database hangs" if hung else ""
    for path in ("/ready", "/metrics"):
        paced = run_wrk(agent.url(path), PACED_CONNECTIONS, settings.wrk_seconds, PACE_MS)
        target = "p99 ≤ 5 ms" + (", unchanged" if hung else "") if path == "/ready" else ""
        yield Row(
            SECTION,
            f"{path} at ~1,000 req/s (paced, c={PACED_CONNECTIONS}){when}",
            paced.summary() + f", max {_ms(paced.max_ms)}",
            target=target,
            verdict=verdict(paced.p99_ms, READY_P99_MS, " ms") if path == "/ready" else "",
        )
        flat = [(c, run_wrk(agent.url(path), c, settings.wrk_seconds)) for c in settings.concurrencies]
        yield Row(SECTION, f"{path} flat out, c={'/'.join(str(c) for c, _ in flat)}{when}", _flat(flat))


def _exporters_row(world: World, settings: Settings, workdir: Path) -> Row:
    """The exporters' own endpoints flat out at c=10: each request runs their checks (queries, a connect)."""
    login = world.pg_role("latexp")
    services = [start_postgres_exporter("pgexp-latency", login, world.pg_port, workdir)]
    paths = ["/metrics"]
    if world.mysql_available:
        services.append(start_mysqld_exporter("myexp-latency", world.mysql_user("latexp"), MYSQL_PORT, workdir))
        paths.append("/metrics")
    services.append(start_blackbox_exporter("bbexp-latency", workdir))
    paths.append(blackbox_path(world.pg_port))
    results: list[str] = []
    try:
        for service, path in zip(services, paths, strict=True):
            wait_for(service, partial(_answers, service, path), "a first scrape")
            results.append(run_wrk(service.url(path), 10, settings.wrk_seconds).summary())
    finally:
        for service in services:
            service.stop()
    if not world.mysql_available:
        results.insert(1, "n/a (MariaDB not reachable)")
    return Row(SECTION, "own endpoint flat out, c=10 (exporters: /metrics, blackbox: /probe)", SEE_ABOVE, *results)


def _answers(service: Service, path: str) -> bool:
    return get(service.url(path), timeout=1.0).status == 200


def _flat(results: list[tuple[int, WrkResult]]) -> str:
    return "; ".join(f"c{c}: {r.summary()}" for c, r in results)


def _db_state(agent: Service) -> str:
    reply = get(agent.url("/status"), timeout=2.0)
    if reply.status != 200:
        return f"/status answered {reply.status or reply.error}"
    probe = next((p for p in json.loads(reply.body)["probes"] if p["probe"] == "db"), None)
    if probe is None:
        return "no db probe"
    return f"ok={probe['ok']} reason={probe['reason']} code={probe['code']}"


def _to_ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def _ms(value: float) -> str:
    return f"{value:.2f} ms" if value < 10 else f"{value:.0f} ms"


def _rate(value: float) -> str:
    return f"{value / 1000:.1f}k req/s" if value >= 10_000 else f"{value:.0f} req/s"
