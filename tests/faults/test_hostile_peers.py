"""The hostile-peer suite (issue 12): each peer that can turn hostile, with each hostility, against a real agent.

Peers: the PostgreSQL and MySQL greeting, a database error (both engines), the TLS handshake (both engines), the
ECS credentials endpoint, STS and Secrets Manager. Hostilities: huge, endless, slow, garbage (tests/faults/hostile).
For every row (tests/faults/hostile/rows.py): the probe fails with the expected reason and code within its timeout
plus 1 s; /health answers 200 with a p99 under 50 ms throughout; RSS peaks at most 32 MiB above the baseline and
comes back within 8 MiB of it. For every agent: SIGTERM, with every one of its peers hostile at once, exits within
the grace plus 2 s, with exit code 0; no canary appears in its output or in any /status it served (live_agent).

Two agents serve the default run (one for the databases, one for AWS), one row after another. With --run-slow,
every row also runs against an agent of its own, which gets its SIGTERM while that one peer is hostile.
The rows' reasons and codes are the table of docs/hostile-peers.md; EHA_WRITE_HOSTILE_TABLE=1 rewrites it from a
full run (with the measured figures).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest

from agent.sandbox.postgres import PostgresSandbox
from tests.faults.cadence import FAST
from tests.faults.hostile import table
from tests.faults.hostile.answers import BUILDERS, ROWS, Peer
from tests.faults.hostile.rows import ROWS as OBSERVED
from tests.faults.hostile.rows import Outcome, run_row
from tests.faults.hostile.wire import Hostility
from tests.faults.hostile.worlds import AWS_PROBES, DB_TARGETS, World, aws_world, database_world
from tests.faults.servers import MyControl, PgControl
from tests.support.aws import Moto

GRACE = float(FAST["AGENT_SHUTDOWN_GRACE_SECONDS"])
EXIT_BOUND = GRACE + 2.0

H = Hostility
_TOO_LARGE, _SLOW = "answer_too_large", Outcome("timeout", ("db:timeout",))


def _db(prefix_garbage: Outcome, tls: bool = False) -> dict[Hostility, Outcome]:
    if tls:
        return {H.HUGE: prefix_garbage, H.ENDLESS: prefix_garbage, H.SLOW: _SLOW, H.GARBAGE: prefix_garbage}
    big = Outcome("server", (f"db:{_TOO_LARGE}",))
    return {H.HUGE: big, H.ENDLESS: big, H.SLOW: _SLOW, H.GARBAGE: prefix_garbage}


def _aws(service: str, timeout_code: str) -> dict[Hostility, Outcome]:
    big = Outcome("server", (f"{service}:{_TOO_LARGE}",))
    closed = Outcome("network", (f"{service}:connection_closed",))
    return {H.HUGE: big, H.ENDLESS: big, H.SLOW: Outcome("timeout", (timeout_code,)), H.GARBAGE: closed}


# How each row must fail. A gigantic or endless answer: `server`, `<probe>:answer_too_large` (the cap), except in a
# TLS handshake, which OpenSSL itself refuses (`tls`). A slow one: the probe's own timeout. Garbage: what the
# driver can tell (a start-up that is not PostgreSQL's, cut by the guard: pg:protocol; an error message that is
# not: the server closed mid-answer; a greeting that is not MySQL's: what answers is looked at, db:wrong_server;
# the ERR packet's own errno, its garbage text redacted and cut; HTTP: not HTTP, so closed before a valid response).
EXPECTED: Mapping[tuple[Peer, Hostility], Outcome] = {
    (peer, hostility): outcome
    for peer, outcomes in {
        Peer.PG_GREETING: _db(Outcome("server", ("pg:protocol",))),
        Peer.PG_ERROR: _db(Outcome("network", ("pg:08003",))),
        Peer.PG_TLS: _db(Outcome("tls", ("db:tls",)), tls=True),
        Peer.MYSQL_GREETING: _db(Outcome("config", ("db:wrong_server",))),
        Peer.MYSQL_ERROR: _db(Outcome("auth", ("mysql:1045",))),
        Peer.MYSQL_TLS: _db(Outcome("tls", ("mysql:2003:tls",)), tls=True),
        Peer.CREDENTIALS: _aws("credentials", "credentials:timeout"),
        Peer.STS: _aws("sts", "credentials:timeout"),
        Peer.SECRETS_MANAGER: _aws("secretsmanager", "secret:timeout"),
    }.items()
    for hostility, outcome in outcomes.items()
}
DB_ROWS = [row for row in ROWS if row[0] in DB_TARGETS]
AWS_ROWS = [row for row in ROWS if row[0] in AWS_PROBES]
# At SIGTERM, each peer of the agent is hostile at once, each in its own way: a drain meets them all.
DB_AT_SIGTERM = {
    Peer.PG_GREETING: H.SLOW,
    Peer.PG_TLS: H.ENDLESS,
    Peer.MYSQL_GREETING: H.HUGE,
    Peer.MYSQL_TLS: H.SLOW,
}
AWS_AT_SIGTERM = {Peer.CREDENTIALS: H.SLOW}  # while the credentials hang, STS and Secrets Manager are never asked


def _id(row: tuple[Peer, Hostility]) -> str:
    return f"{row[0].name.lower()}-{row[1]}"


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="module")
async def db_world(
    fault_cluster: PostgresSandbox, pg_control: PgControl, my_control: MyControl, config_dir: Path
) -> AsyncIterator[World]:
    peers = tuple(DB_TARGETS)
    async with database_world("hostile-db", fault_cluster, pg_control, my_control, config_dir, peers) as world:
        yield world


@pytest.fixture(scope="module")
async def aws(moto: Moto, fault_cluster: PostgresSandbox, pg_control: PgControl) -> AsyncIterator[World]:
    async with aws_world("hostile-aws", moto, fault_cluster, pg_control) as world:
        yield world


@pytest.mark.parametrize("row", DB_ROWS, ids=_id)
async def test_hostile_database_peer_fails_the_probe_and_bounds_the_agent(
    db_world: World, row: tuple[Peer, Hostility]
) -> None:
    peer, hostility = row
    await run_row(db_world.spots[peer], peer, hostility, EXPECTED[row])


@pytest.mark.parametrize("row", AWS_ROWS, ids=_id)
async def test_hostile_aws_peer_fails_the_probe_and_bounds_the_agent(aws: World, row: tuple[Peer, Hostility]) -> None:
    peer, hostility = row
    await run_row(aws.spots[peer], peer, hostility, EXPECTED[row])


async def sigterm_while_hostile(world: World, hostile: Mapping[Peer, Hostility]) -> float:
    """Turn each peer hostile, let the probes meet them, SIGTERM: the seconds the agent took to exit."""
    for peer, hostility in hostile.items():
        spot = world.spots[peer]
        await asyncio.to_thread(spot.front.turn, BUILDERS[peer](hostility, spot.canary))
    await asyncio.sleep(0.5)  # logins and calls are now in flight into the hostile peers
    process = world.agent.process
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(process.wait(), EXIT_BOUND + 10)
    took = time.monotonic() - started
    assert code == 0, f"exit code {code} after SIGTERM"
    assert took <= EXIT_BOUND, f"the agent took {took:.2f}s to exit after SIGTERM (bound {EXIT_BOUND:.1f}s)"
    return took


async def test_sigterm_with_every_database_peer_hostile_exits_within_the_grace(db_world: World) -> None:
    await sigterm_while_hostile(db_world, DB_AT_SIGTERM)


async def test_sigterm_with_the_credentials_endpoint_hostile_exits_within_the_grace(aws: World) -> None:
    await sigterm_while_hostile(aws, AWS_AT_SIGTERM)


@pytest.mark.slow
@pytest.mark.parametrize("row", ROWS, ids=_id)
async def test_each_row_alone_then_sigterm_while_it_is_hostile(
    row: tuple[Peer, Hostility],
    fault_cluster: PostgresSandbox,
    pg_control: PgControl,
    my_control: MyControl,
    moto: Moto,
    config_dir: Path,
) -> None:
    """The long variant: a fresh agent per row, so its RSS is the row's alone; its SIGTERM meets that peer."""
    peer, hostility = row
    if peer in DB_TARGETS:
        world = database_world(f"hostile-{_id(row)}", fault_cluster, pg_control, my_control, config_dir, (peer,))
    else:
        world = aws_world(f"hostile-{_id(row)}", moto, fault_cluster, pg_control)
    async with world as alone:
        await run_row(alone.spots[peer], peer, hostility, EXPECTED[row])
        await sigterm_while_hostile(alone, {peer: hostility})


def test_the_table_in_docs_says_what_the_rows_observed() -> None:
    """docs/hostile-peers.md lists every row with the reason and code it shows; the rows that ran agree with it.

    EHA_WRITE_HOSTILE_TABLE=1 rewrites the table (and its measured figures) from this run, when every row ran.
    """
    observed = {row.key: row for row in OBSERVED}
    if os.environ.get(table.WRITE_VARIABLE) == "1":
        assert len(observed) == len(ROWS), "rewrite the table from a run of every row"
        table.write([observed[(peer.value, hostility.value)] for peer, hostility in ROWS])
    documented = table.documented()
    expected = {(peer.value, hostility.value): EXPECTED[(peer, hostility)] for peer, hostility in ROWS}
    assert set(documented) == set(expected), "the table's rows are not the suite's"
    for key, outcome in expected.items():
        assert documented[key] == (outcome.reason, outcome.codes[0]), f"{key}: the table says {documented[key]}"
    for key, row in observed.items():
        assert documented[key] == (row.reason, row.code), f"{key}: observed {row.reason} {row.code}"
    table.write_artifact(list(observed.values()))
