"""Abusive HTTP clients against a real agent limited to 1,024 descriptors, with its stdout read, stalled (a full
pipe nobody reads) or closed: slow headers, a malformed flood, then 2,000 idle connections, held while SIGTERM
arrives. Each row: /health p99 under 50 ms from a prober of its own, every answer 200; the db probe keeps passing
(no EMFILE); the counter the row is about moves. Each agent: the stdout counters move, SIGTERM exits 0 within the
grace plus 2 s, no traceback on stderr. Then the signals an operator may send besides SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import pytest

from agent.outputs.logs import BAD_REQUEST_BURST, BAD_REQUEST_EVERY
from agent.outputs.server import KEEPALIVE_SECONDS
from agent.sandbox.postgres import PostgresSandbox
from tests.faults import matrix
from tests.faults.cadence import FAST
from tests.faults.harness import http
from tests.faults.hygiene import assert_no_distinctive_secret, distinctive
from tests.faults.pressure import (
    NOFILE,
    HealthProber,
    PressuredAgent,
    Stdout,
    ask_for_dumps,
    ensure_descriptors,
    idle_connections,
    malformed_flood,
    metric,
    p99,
    pressured_agent,
    slow_headers,
)
from tests.faults.servers import PgControl

P99_BUDGET = 0.050  # seconds
BURST_BUDGET = 1.0  # while a burst of new connections is accepted: every health check answered within this
GRACE = float(FAST["AGENT_SHUTDOWN_GRACE_SECONDS"])
EXIT_BUDGET = GRACE + 2.0
SECONDS = 3.0  # each row's abuse
SLOW_CUT_SECONDS = KEEPALIVE_SECONDS + 1.5  # once per suite, slow headers outlast the first-request timeout
IDLE_CONNECTIONS = 2000
IDLE_HOLD = 2.5  # held this long once all are open (then SIGTERM, still held)
SETTLE = 0.3  # after the last connect, the agent may still be accepting the last ones the kernel queued
DRIBBLERS = 600  # more than the cap (512 at 1,024 descriptors): the cap and the timeout both act
OVERSHOOT = 128  # one accept batch (the listen backlog) may land before the cap sees it
DUMPS = 150  # ~1 KiB each: more than the 64 KiB a stalled stdout's queue holds

Samples = dict[Any, float]


@pytest.fixture(scope="module", autouse=True)
def descriptors_for_the_clients() -> None:
    """The test process holds the 2,000 idle connections, the slow clients and the agent's pipes at once."""
    ensure_descriptors(IDLE_CONNECTIONS + 1000)


@pytest.fixture(scope="module")
async def pg_env(fault_cluster: PostgresSandbox, pg_control: PgControl) -> AsyncIterator[dict[str, str]]:
    password = distinctive("PostgreSQL password (HTTP pressure)")
    role = await pg_control.role(password)
    try:
        yield {
            **FAST,
            "AGENT_DB_DSN": f"postgresql://{role}@{fault_cluster.host}:{fault_cluster.port}/postgres",
            "AGENT_DB_PASSWORD": password,
        }
    finally:
        await pg_control.drop_role(role)


@dataclass
class Row:
    """One abuse against the agent: what it was, what moved, and which checks failed."""

    what: str
    observed: str = ""
    failed: list[str] = field(default_factory=list)


@dataclass
class Abused:
    """An abuse that ran: its description, the counter it moved (from /metrics before and after) and whether that
    is right, and from when /health is held to P99_BUDGET (seconds into the prober's run; before that, a burst of
    new connections is being accepted)."""

    what: str
    moved: Callable[[Samples], tuple[str, bool]]
    steady_from: float = 0.0


def evicted_since(before: Samples) -> Callable[[Samples], float]:
    return lambda after: (
        metric(after, "http_connections_evicted_total") - metric(before, "http_connections_evicted_total")
    )


async def slow(agent: PressuredAgent, before: Samples, seconds: float) -> Abused:
    """Slowloris: DRIBBLERS clients sending headers a byte every 0.5 s."""
    started = time.monotonic()
    clients = await slow_headers(agent.port, DRIBBLERS, seconds)
    connected = [c for c in clients if c.opened]
    assert len(connected) == DRIBBLERS, f"only {len(connected)} slow clients connected"
    cut = sorted(c.closed_after for c in connected if c.closed_after is not None)
    evicted = evicted_since(before)

    def moved(after: Samples) -> tuple[str, bool]:
        ok = evicted(after) >= DRIBBLERS - metric(after, "http_connections_max") - OVERSHOOT
        if seconds >= SLOW_CUT_SECONDS:  # long enough to see the first-request timeout close every one
            ok = ok and len(cut) == DRIBBLERS and cut[-1] <= KEEPALIVE_SECONDS + 1.0
        cut_note = f", all cut by {cut[-1]:.1f}s" if len(cut) == DRIBBLERS else ""
        return f"evicted +{evicted(after):g}{cut_note}", ok

    opening = max(c.opened for c in connected) - started  # they all connect at once: a burst, then a trickle
    return Abused(f"{DRIBBLERS} slow-headers clients for {seconds:g}s", moved, steady_from=opening + SETTLE)


async def flood(agent: PressuredAgent, before: Samples, seconds: float) -> Abused:
    """Malformed requests as fast as 5 clients can send them, each on a new connection."""
    logged_before = bad_request_lines(agent)
    sent = await malformed_flood(agent.port, seconds)

    def moved(after: Samples) -> tuple[str, bool]:
        suppressed = metric(after, "log_lines_suppressed_total") - metric(before, "log_lines_suppressed_total")
        logged = bad_request_lines(agent) - logged_before
        ok = suppressed > 0 and logged <= BAD_REQUEST_BURST + seconds / BAD_REQUEST_EVERY + 1
        return f"suppressed +{suppressed:g}", ok

    return Abused(f"{sent} malformed requests", moved)


def bad_request_lines(agent: PressuredAgent) -> int:
    return sum(1 for line in log_lines(agent) if line["logger"] == "aiohttp.server")


def log_lines(agent: PressuredAgent) -> list[dict[str, Any]]:
    lines = bytes(agent.captured.stdout).decode(errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


async def measured(agent: PressuredAgent, abuse: Callable[[Samples], Awaitable[Abused]]) -> Row:
    """Run one abuse with the /health prober and the descriptor watch beside it; judge the row. The agent is still
    running (and the abuse may still hold its connections) on return."""
    before = await agent.metrics()
    prober = await HealthProber.start(agent.port)
    watching = asyncio.create_task(watch_descriptors(agent))
    try:
        abused = await abuse(before)
    finally:
        samples = await prober.stop()
        watching.cancel()
    after = await agent.metrics()
    steady = [s for s in samples if s[0] >= abused.steady_from]
    burst = [s for s in samples if s[0] < abused.steady_from]
    moved, moved_ok = abused.moved(after)
    latency = p99(steady)
    row = Row(abused.what)
    row.observed = f"/health p99 {latency * 1000:.1f} ms over {len(steady)} checks{burst_note(burst)}; {moved}"
    checks = {
        "health": {s[1] for s in samples} == {200} and latency < P99_BUDGET and len(steady) >= 100,
        "burst": all(elapsed < BURST_BUDGET for _, _, elapsed in burst),
        "counter": moved_ok,
        "probe": db_failures(after) == db_failures(before),
        "descriptors": agent.fds_peak < NOFILE,
    }
    row.failed = [name for name, ok in checks.items() if not ok]
    return row


def burst_note(burst: list[tuple[float, int, float]]) -> str:
    """While connections were still being accepted: the slowest health check."""
    if not burst:
        return ""
    slowest = max(elapsed for _, _, elapsed in burst)
    return f" once all were connected (while connecting: {len(burst)}, slowest {slowest * 1000:.0f} ms)"


def db_failures(values: Samples) -> float:
    return sum(v for (name, _), v in values.items() if name == "health_agent_probe_failures_total")


async def watch_descriptors(agent: PressuredAgent) -> None:
    """Sample the agent's open descriptors every 50 ms until cancelled (the peak lands in agent.fds_peak)."""
    while agent.running:
        agent.fds()
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("stdout", [Stdout.READ, Stdout.STALLED, Stdout.CLOSED])
async def test_abusive_clients_leave_health_fast_and_shutdown_bounded(pg_env: dict[str, str], stdout: Stdout) -> None:
    name = f"http-abuse-stdout-{stdout}"
    rows: list[Row] = []
    async with pressured_agent(name, pg_env, stdout) as agent, AsyncExitStack() as held:
        await agent.wait_ready()
        if stdout is not Stdout.READ:
            # An operator asking for state dumps: enough lines to fill a stalled stdout's queue before the rows
            # (the agent itself stays quiet under abuse: a flood is one line per 10 s, the cap one a minute).
            await ask_for_dumps(agent, DUMPS)
        slow_seconds = SLOW_CUT_SECONDS if stdout is Stdout.READ else SECONDS
        rows.append(await measured(agent, lambda before: slow(agent, before, slow_seconds)))
        rows.append(await measured(agent, lambda before: flood(agent, before, SECONDS)))

        async def idle(before: Samples) -> Abused:
            writers, opening = await held.enter_async_context(idle_connections(agent.port, IDLE_CONNECTIONS))
            assert len(writers) == IDLE_CONNECTIONS, f"only {len(writers)} connections could be opened"
            await asyncio.sleep(IDLE_HOLD)
            evicted = evicted_since(before)

            def moved(after: Samples) -> tuple[str, bool]:
                limit = metric(after, "http_connections_max")
                return f"evicted +{evicted(after):g}", evicted(after) >= IDLE_CONNECTIONS - limit - OVERSHOOT

            what = f"{IDLE_CONNECTIONS} idle connections (opened in {opening:.1f}s)"
            return Abused(what, moved, steady_from=opening + SETTLE)

        rows.append(await measured(agent, idle))
        after = await agent.metrics()
        code, took = await agent.stop()  # the 2,000 connections still held
    stderr = agent.stderr()
    dropped = {r: metric(after, "log_lines_dropped_total", reason=r) for r in ("queue_full", "write_failed")}
    agent_checks = {
        "stdout": stdout_moved(stdout, dropped, stderr),
        "exit": code == 0 and took <= EXIT_BUDGET,
        "stderr": "Traceback" not in stderr and "Logging error" not in stderr,
    }
    ending = (
        f"; log lines dropped {dropped['queue_full']:g} (queue full) / {dropped['write_failed']:g} (closed); fds peak"
        f" {agent.fds_peak}; SIGTERM with the connections held: exit {code} in {took:.2f}s"
    )
    for row in record(rows, stdout, ending, [k for k, ok in agent_checks.items() if not ok]):
        assert not row.failed, f"{name}, {row.what}: {row.failed} failed: {row.observed}\nstderr:\n{stderr[-2000:]}"
    everything = agent.captured.output()
    assert "Too many open files" not in everything and "EMFILE" not in everything
    assert_no_distinctive_secret(everything, name)


def record(rows: list[Row], stdout: Stdout, ending: str, agent_failed: list[str]) -> Iterator[Row]:
    """Into the fault matrix, the agent's own figures and failures on its last row; yields the rows."""
    expected = f"/health p99 < 50 ms, 200; the counter moves; SIGTERM < {EXIT_BUDGET:g}s"
    load = f"load {os.getloadavg()[0]:.1f}"
    rows[-1].observed += ending
    rows[-1].failed += agent_failed
    for row in rows:
        fault = f"{row.what}, stdout {stdout}"
        matrix.record(matrix.Row(fault, expected, row.observed, None, None, not row.failed, load, "http"))
        yield row


def stdout_moved(stdout: Stdout, dropped: dict[str, float], stderr: str) -> bool:
    """Stalled: lines dropped for a full queue. Closed: dropped as failed writes, said once on stderr."""
    if stdout is Stdout.STALLED:
        return dropped["queue_full"] > 0
    if stdout is Stdout.CLOSED:
        lines = stderr.splitlines()
        return dropped["write_failed"] > 0 and len(lines) == 1 and "cannot write logs to stdout (EPIPE" in lines[0]
    return dropped == {"queue_full": 0, "write_failed": 0} and stderr == ""


async def test_sighup_is_ignored_and_sigusr1_sigusr2_log_a_state_dump(pg_env: dict[str, str]) -> None:
    """SIGHUP: one warning each, the agent keeps serving. SIGUSR1/SIGUSR2: one `agent.dump` line each with the
    /status report, even at AGENT_LOG_LEVEL=error. Then SIGTERM still drains and exits 0 within the grace + 2 s."""
    async with pressured_agent("http-signals", pg_env, Stdout.READ) as agent:
        await agent.wait_ready()
        for sig in (signal.SIGHUP, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
            agent.proc.send_signal(sig)
            await asyncio.sleep(0.3)
            assert agent.running, f"the agent died on {sig.name}"
            assert (await http(agent.port, "GET", "/health")).status == 200
        code, took = await agent.stop()
    assert code == 0 and took <= EXIT_BUDGET, (code, took)
    lines = log_lines(agent)
    hup = [line for line in lines if "SIGHUP" in line["message"]]
    assert len(hup) == 2 and hup[0]["level"] == "warning" and "ignored" in hup[0]["message"]
    dumps = [line for line in lines if line["logger"] == "agent.dump"]
    assert [d["dump"]["signal"] for d in dumps] == ["SIGUSR1", "SIGUSR2"]
    report = dumps[0]["dump"]["report"]
    assert report["status"] == "ready" and report["probes"][0]["probe"] == "db"
    assert dumps[0]["dump"]["open_fds"] > 0 and dumps[0]["dump"]["log_lines_dropped"]["queue_full"] == 0
    assert agent.stderr() == ""


async def test_the_state_dump_shows_at_any_log_level(pg_env: dict[str, str]) -> None:
    async with pressured_agent("http-dump-level", {**pg_env, "AGENT_LOG_LEVEL": "error"}, Stdout.READ) as agent:
        await agent.wait_ready()
        agent.proc.send_signal(signal.SIGUSR1)
        await asyncio.sleep(0.3)
        code, _ = await agent.stop()
    assert code == 0
    assert [line["logger"] for line in log_lines(agent)] == ["agent.dump"]


async def test_an_agent_started_without_stdout_says_so_once_and_writes_nowhere_else(pg_env: dict[str, str]) -> None:
    """Descriptor 1 closed at start (EBADF): it is held on /dev/null, so no socket of the agent's gets number 1 and
    the log lines; one line on stderr says so, every line is counted as dropped, and the agent serves as usual."""
    async with pressured_agent("http-no-stdout", pg_env, Stdout.MISSING) as agent:
        await agent.wait_ready()
        assert agent.stdout_target() == os.devnull
        agent.proc.send_signal(signal.SIGUSR1)
        await asyncio.sleep(0.3)
        values = await agent.metrics()
        code, took = await agent.stop()
    assert code == 0 and took <= EXIT_BUDGET, (code, took)
    assert metric(values, "log_lines_dropped_total", reason="write_failed") >= 3  # started, ready, the dump
    (said,) = agent.stderr().splitlines()
    assert "cannot write logs to stdout (EBADF: Bad file descriptor)" in json.loads(said)["message"]
