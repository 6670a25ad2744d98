"""An accelerated soak: thousands of probe runs at the shortest interval while faults come and go, and the
agent's memory, file descriptors and server-side sessions stay flat.

One agent, two targets (PostgreSQL with its password from Secrets Manager, MariaDB with the password in the
DSN), a fresh login every second on each. Faults cycle through both fault proxies, the credentials endpoint
and the AWS front. Figures are taken only in the quiet phase between faults, after one warm-up cycle (imports,
TLS contexts, botocore's service models and the allocator's arenas settle there): start vs end must stay within
the margins below. ~45 s by default; EHA_SOAK_SECONDS (or --run-slow: 300 s) for longer.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from agent.sandbox.aws import CredentialsEndpoint, EndpointMode
from agent.sandbox.postgres import PostgresSandbox
from tests.faults.harness import LiveAgent, live_agent
from tests.faults.hygiene import distinctive
from tests.faults.matrix import FIGURES
from tests.faults.servers import MyControl, PgControl
from tests.faults.stubs import AwsFront, distinctive_task_role, error
from tests.support import slow
from tests.support.aws import REGION, Moto
from tests.support.databases import Server
from tests.support.fault_proxy import Fault, FaultProxy, fault_proxy

INTERVAL = 0.1  # the shortest interval the configuration accepts
TIMEOUT = 0.5
PHASE = 1.0  # seconds per fault, and per quiet phase after it
DEFAULT_SECONDS = 45.0
FULL_SECONDS = 300.0
RSS_MARGIN_KIB = 6 * 1024  # growth allowed from the first quiet phase to the last
FD_MARGIN = 2
MIN_RUNS = 1000


@dataclass
class Reading:
    at: float
    fds: int
    rss_kib: int
    pg_sessions: int
    my_sessions: int


@dataclass
class Soak:
    agent: LiveAgent
    pg_role: str
    my_user: str
    pg: PgControl
    my: MyControl
    readings: list[Reading] = field(default_factory=list)
    quiet: list[list[Reading]] = field(default_factory=list)  # readings of each quiet phase

    async def read(self) -> Reading:
        reading = Reading(
            time.monotonic(),
            self.agent.fds(),
            self.agent.rss_kib(),
            len(await self.pg.pids(self.pg_role)),
            len(await self.my.thread_ids(self.my_user)),
        )
        self.readings.append(reading)
        return reading

    async def hold(self, seconds: float, quiet: bool) -> None:
        phase: list[Reading] = []
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            phase.append(await self.read())
            await asyncio.sleep(0.25)
        if quiet:
            self.quiet.append(phase[len(phase) // 2 :])  # the settled half of the phase


@pytest.fixture
def proxies(fault_cluster: PostgresSandbox, mysql_server: Server) -> Iterator[tuple[FaultProxy, FaultProxy]]:
    with (
        fault_proxy(fault_cluster.host, fault_cluster.port) as pg,
        fault_proxy(mysql_server.host, mysql_server.port) as my,
    ):
        yield pg, my


def soak_seconds(config: pytest.Config) -> float:
    configured = os.environ.get("EHA_SOAK_SECONDS")
    if configured:
        return float(configured)
    return FULL_SECONDS if slow.full_run(config) else DEFAULT_SECONDS


async def test_soak_with_alternating_faults_keeps_memory_fds_and_sessions_flat(
    request: pytest.FixtureRequest,
    moto: Moto,
    pg_control: PgControl,
    my_control: MyControl,
    proxies: tuple[FaultProxy, FaultProxy],
    tmp_path: Path,
) -> None:
    seconds = soak_seconds(request.config)
    pg_proxy, my_proxy = proxies
    keys = await distinctive_task_role(moto, "soak")
    endpoint = CredentialsEndpoint(keys, role_arn=moto.identities.role_arn)
    front = AwsFront(moto.url)
    await endpoint.start()
    await front.start()
    pg_password = distinctive("PostgreSQL password (soak, from Secrets Manager)")
    pg_role = await pg_control.role(pg_password)
    my_password = distinctive("MariaDB password (soak, in the DSN)")
    my_user = await my_control.user(my_password, max_connections=3)
    secret, _ = await moto.secret({"username": pg_role, "password": pg_password})
    connections = {
        "pg": {"dsn": f"postgresql://127.0.0.1:{pg_proxy.port}/postgres?sslmode=require", "secret_id": secret},
        "my": {"dsn": f"mysql://{my_user}:{my_password}@127.0.0.1:{my_proxy.port}/?sslmode=disable"},
    }
    config = tmp_path / "agent.yaml"
    await asyncio.to_thread(config.write_text, yaml.safe_dump({"database": {"connections": connections}}))
    env = {
        "AGENT_INTERVAL_SECONDS": str(INTERVAL),
        "AGENT_TIMEOUT_SECONDS": str(TIMEOUT),
        "AGENT_DB_REAUTH_SECONDS": "1",
        "AGENT_SECRET_REFRESH_SECONDS": "1",
        "AGENT_SHUTDOWN_GRACE_SECONDS": "0.2",
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": front.url,
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": endpoint.url,
    }
    faults = fault_cycle(pg_proxy, my_proxy, endpoint, front)
    try:
        async with live_agent("soak", env, "--config", str(config)) as agent:
            soak = Soak(agent, pg_role, my_user, pg_control, my_control)
            await agent.wait_status("ready", 20)
            started = time.monotonic()
            cycles = 0
            while True:
                for _, inject, clear in faults:
                    await inject()
                    await soak.hold(PHASE, quiet=False)
                    await clear()
                    await soak.hold(PHASE, quiet=True)
                cycles += 1
                if time.monotonic() - started >= seconds:
                    break
            elapsed = time.monotonic() - started
            runs, failed = await run_counts(agent)
            await agent.wait_status("ready", 10)
    finally:
        await front.stop()
        await endpoint.stop()
        await pg_control.drop_role(pg_role)
    report(soak, cycles, elapsed, runs, failed)


Step = tuple[str, Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]


def fault_cycle(pg: FaultProxy, my: FaultProxy, endpoint: CredentialsEndpoint, front: AwsFront) -> list[Step]:
    def proxy(*pairs: tuple[FaultProxy, Fault]) -> Callable[[], Awaitable[None]]:
        async def switch() -> None:
            for target, fault in pairs:
                target.set(fault)

        return switch

    async def endpoint_500() -> None:
        await endpoint.set_mode(EndpointMode.SERVER_ERROR)

    async def endpoint_ok() -> None:
        await endpoint.set_mode(EndpointMode.OK)

    async def throttle() -> None:
        front.answer({"secretsmanager": error("ThrottlingException")})

    async def unthrottle() -> None:
        front.forward()

    calm = proxy((pg, Fault.PASS), (my, Fault.PASS))
    return [
        ("PostgreSQL refused", proxy((pg, Fault.REFUSE)), calm),
        ("MariaDB hangs", proxy((my, Fault.HANG)), calm),
        ("credentials endpoint 500", endpoint_500, endpoint_ok),
        ("both reset", proxy((pg, Fault.RESET), (my, Fault.RESET)), calm),
        ("Secrets Manager throttles", throttle, unthrottle),
        ("PostgreSQL hangs, MariaDB refused", proxy((pg, Fault.HANG), (my, Fault.REFUSE)), calm),
    ]


async def run_counts(agent: LiveAgent) -> tuple[int, dict[str, int]]:
    """Probe runs that took time (the duration histogram), and failed runs per probe:target."""
    runs, failed = 0, dict[str, int]()
    for line in (await agent.metrics()).splitlines():
        value = float(line.rsplit(" ", 1)[-1]) if line and not line.startswith("#") else 0.0
        if line.startswith("health_agent_probe_duration_seconds_count"):
            runs += int(value)
        elif line.startswith("health_agent_probe_failures_total{"):
            labels = dict(part.split("=", 1) for part in line[line.index("{") + 1 : line.index("}")].split(","))
            key = f"{labels['probe'].strip(chr(34))}:{labels['target'].strip(chr(34))}"
            failed[key] = failed.get(key, 0) + int(value)
    return runs, failed


def report(soak: Soak, cycles: int, elapsed: float, runs: int, failed: dict[str, int]) -> None:
    warm, last = soak.quiet[len(soak.quiet) // cycles], soak.quiet[-1]  # the first quiet phase after the warm-up
    rss_start, rss_end = (statistics.median(r.rss_kib for r in phase) for phase in (warm, last))
    fd_start, fd_end = (max(r.fds for r in phase) for phase in (warm, last))
    peak_fds = max(r.fds for r in soak.readings)
    pg_peak = max(r.pg_sessions for r in soak.readings)
    my_peak = max(r.my_sessions for r in soak.readings)
    failures = [s for s in soak.agent.timeline if s.health_http != 200]
    per_cycle = soak.quiet[len(soak.quiet) // cycles - 1 :: len(soak.quiet) // cycles]  # each cycle's last quiet phase
    trend = " ".join(f"{statistics.median(r.rss_kib for r in phase) / 1024:.1f}" for phase in per_cycle)
    FIGURES.append(
        f"soak: {runs} probe runs in {elapsed:.0f} s at a {INTERVAL:g} s interval, {cycles} fault cycles;"
        f" RSS {rss_start / 1024:.1f} -> {rss_end / 1024:.1f} MiB; fds {fd_start} -> {fd_end} (peak {peak_fds});"
        f" server sessions peak PostgreSQL {pg_peak}, MariaDB {my_peak}; /health non-200: {len(failures)}"
        f" of {len(soak.agent.timeline)} samples; failed runs {dict(sorted(failed.items()))};"
        f" RSS at the end of each cycle (MiB): {trend}"
    )
    quiet = [key for key in ("db:pg", "db:my", "credentials:aws", "secret:pg") if not failed.get(key)]
    assert not quiet, f"the faults never reached {quiet}: the soak would only prove an idle agent flat"
    assert runs >= MIN_RUNS, f"only {runs} probe runs"
    assert not failures, f"/health answered {failures[0].health_http}"
    assert rss_end - rss_start <= RSS_MARGIN_KIB, f"RSS grew {(rss_end - rss_start) / 1024:.1f} MiB"
    assert fd_end <= fd_start + FD_MARGIN, f"fds {fd_start} -> {fd_end}"
    assert pg_peak <= 2 and my_peak <= 2, f"server sessions peaked at {pg_peak} (PostgreSQL), {my_peak} (MariaDB)"
