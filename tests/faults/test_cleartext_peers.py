"""Hostile peers, the cleartext-password-request column: database servers that refuse TLS and ask for the password
in a form they can read, against a running agent.

One `serve` process, one target per row, each at its own stand-in (tests/support/auth_standins.py): PostgreSQL's
AuthenticationCleartextPassword, a MySQL greeting naming mysql_clear_password, an auth switch to it, and
caching_sha2_password's full authentication (an RSA key the server sends itself); for a static password under the
default sslmode (prefer) and for an IAM token (which configuration holds to sslmode=require). For every row:
- the probe fails with reason `tls` and the row's code, within its timeout plus 1 s, and the hint names the request;
- the canary (password, or the token and the task's keys inside it) never reaches the stand-in, nor the output;
- /health answers within 50 ms (p99) throughout; RSS peaks at most 32 MiB above its baseline and comes back within
  8 MiB of it; SIGTERM ends the agent within its grace plus 2 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import statistics
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agent.sandbox.aws import CredentialsEndpoint
from tests.faults.cadence import FAST, TIMEOUT
from tests.faults.harness import LiveAgent, Sample, http, live_agent
from tests.faults.hygiene import distinctive
from tests.faults.matrix import FIGURES, Row, record
from tests.faults.stubs import distinctive_task_role
from tests.support.auth_standins import MySqlStandIn, PgStandIn, RsaKey, pg_cleartext
from tests.support.aws import REGION, Moto
from tests.support.secrets import DISTINCTIVE, leaks

GRACE = 0.2  # FAST's AGENT_SHUTDOWN_GRACE_SECONDS
MIB = 1024


@dataclass(frozen=True, slots=True)
class Peer:
    """One row: a stand-in, how the agent logs in to it, and what it must report."""

    name: str
    engine: str  # postgresql or mysql
    standin: PgStandIn | MySqlStandIn
    iam: bool
    code: str
    request: str  # what the hint must name


def peers(rsa: RsaKey) -> list[Peer]:
    clear = MySqlStandIn("mysql_clear_password")
    switch = MySqlStandIn("mysql_native_password", "switch")
    switch_iam = MySqlStandIn("mysql_native_password", "switch")
    return [
        Peer("pg_cleartext", "postgresql", PgStandIn(pg_cleartext()), False, "pg:cleartext_password", "Authentication"),
        Peer("pg_iam", "postgresql", PgStandIn(pg_cleartext()), True, "db:tls_not_negotiated", "does not offer TLS"),
        Peer("my_greeting", "mysql", clear, False, "mysql:clear_password", "mysql_clear_password"),
        Peer("my_switch", "mysql", switch, False, "mysql:clear_password", "mysql_clear_password"),
        Peer("my_iam", "mysql", switch_iam, True, "db:tls_not_negotiated", "does not offer TLS"),
        Peer(
            "my_rsa",
            "mysql",
            MySqlStandIn("caching_sha2_password", "full_auth", rsa),
            False,
            "mysql:server_public_key",
            "RSA public key",
        ),
    ]


def connection(peer: Peer, canary: str) -> dict[str, Any]:
    port = peer.standin.port
    if peer.iam:  # no sslmode: IAM's default, require (there is no CA bundle here)
        dsn = f"{peer.engine}://app@127.0.0.1:{port}/postgres"
        return {"dsn": dsn, "aws_iam_auth": {"enabled": True, "region": REGION}}
    return {"dsn": f"{peer.engine}://app:{canary}@127.0.0.1:{port}/postgres"}  # no sslmode: prefer


@contextlib.asynccontextmanager
async def standins(rows: list[Peer]) -> AsyncIterator[None]:
    async with contextlib.AsyncExitStack() as stack:
        for row in rows:
            await stack.enter_async_context(row.standin)
        yield


async def health_latencies(agent: LiveAgent, until: asyncio.Event) -> list[float]:
    """/health response times (seconds), one every 20 ms, until told to stop."""
    times = []
    while not until.is_set():
        reply = await http(agent.port, "GET", "/health")
        assert reply.status == 200, reply.status
        times.append(reply.elapsed)
        await asyncio.sleep(0.02)
    return times


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else values[0]


async def test_servers_that_ask_for_a_readable_password_without_tls_get_nothing(moto: Moto, tmp_path: Path) -> None:
    rsa = await RsaKey.make(tmp_path)
    rows = peers(rsa)
    keys = await distinctive_task_role(moto, "cleartext peers")
    endpoint = CredentialsEndpoint(keys, role_arn=moto.identities.role_arn)
    await endpoint.start()
    canaries = {row.name: distinctive(f"database password ({row.name})") for row in rows}
    try:
        async with standins(rows):
            config = tmp_path / "agent.yaml"
            connections = {row.name: connection(row, canaries[row.name]) for row in rows}
            await asyncio.to_thread(config.write_text, yaml.safe_dump({"database": {"connections": connections}}))
            env = {**FAST, "AWS_ENDPOINT_URL": moto.url, "AWS_CONTAINER_CREDENTIALS_FULL_URI": endpoint.url}
            async with live_agent("cleartext", env, "--config", str(config)) as agent:
                await watch(agent, rows)
    finally:
        await endpoint.stop()
    for row in rows:
        received = row.standin.everything.decode(errors="replace")
        assert row.standin.received, f"{row.name}: the agent never connected"
        assert not leaks(received, DISTINCTIVE), f"{row.name}: the stand-in received {leaks(received, DISTINCTIVE)}"


async def watch(agent: LiveAgent, rows: list[Peer]) -> None:
    """Wait for every row's failure while /health and RSS are watched; then SIGTERM, timed."""
    await agent.wait_for(lambda s: bool(s.probes), 10)
    baseline = agent.rss_kib()
    stop = asyncio.Event()
    latencies = asyncio.create_task(health_latencies(agent, stop))
    peak = baseline
    problems: list[str] = []
    try:
        for row in rows:
            sample = await agent.wait_for(failed_as(row), 15)
            peak = max(peak, agent.rss_kib())
            problems += check_row(row, sample.probes[("db", row.name)])
        await asyncio.sleep(2)  # several more failing runs of every row
        peak = max(peak, agent.rss_kib())
    finally:
        stop.set()
        times = await latencies
    after = agent.rss_kib()
    started = time.monotonic()
    agent.process.send_signal(signal.SIGTERM)
    await agent.process.wait()
    stopped = time.monotonic() - started
    FIGURES.append(
        f"cleartext peers: RSS {baseline / MIB:.1f} MiB, peak +{(peak - baseline) / MIB:.1f}, after"
        f" {(after - baseline) / MIB:+.1f}; /health p99 {p99(times) * 1000:.1f} ms over {len(times)} requests;"
        f" SIGTERM to exit {stopped:.2f}s"
    )
    assert not problems, "; ".join(problems)
    assert p99(times) < 0.050, f"/health p99 {p99(times) * 1000:.1f} ms over {len(times)} requests"
    assert peak - baseline <= 32 * MIB and abs(after - baseline) <= 8 * MIB, (baseline, peak, after)
    assert stopped <= GRACE + 2, f"SIGTERM took {stopped:.2f}s"


def failed_as(row: Peer) -> Callable[[Sample], bool]:
    return lambda sample: sample.code("db", row.name) == row.code


def check_row(row: Peer, entry: Mapping[str, Any]) -> list[str]:
    problems = []
    if entry["reason"] != "tls":
        problems.append(f"{row.name}: reason {entry['reason']}")
    if entry["last_duration_ms"] > (TIMEOUT + 1) * 1000:
        problems.append(f"{row.name}: took {entry['last_duration_ms']} ms")
    if row.request not in entry["hint"] + entry["message"]:
        problems.append(f"{row.name}: the hint does not name {row.request!r}")
    record(Row(f"cleartext request: {row.name}", f"db:{row.name} tls {row.code}", entry["code"], None, None,
               not problems, f"{entry['last_duration_ms']} ms", "cleartext"))  # fmt: skip
    return problems
