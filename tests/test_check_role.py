"""`ecs-health-agent check` with AGENT_DB_EXPECT_ROLE, a real process against a real primary and hot standby: the
lines it prints for each mismatch, and a failover's fix (the name resolving to the writer again) seen at once.

One host name is pointed at the standby (127.0.0.2) or the primary (127.0.0.1) through the tests' hosts file, as a
failover moves an Aurora cluster endpoint: same name, same port, another address.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from tests.support.agent_process import run_agent
from tests.support.resolver.sitecustomize import HOSTS_VARIABLE
from tests.support.standby import STANDBY_HOST, Pair

NAME = "orders.cluster-role.eha.test"


async def check(pg_pair: Pair, hosts: Path, address: str, role: str) -> subprocess.CompletedProcess[str]:
    """`check` (the checklist) with NAME resolving to `address`."""
    await asyncio.to_thread(hosts.write_text, json.dumps({NAME: address}))
    env = {
        HOSTS_VARIABLE: str(hosts),
        "AGENT_DB_DSN": f"postgresql://{pg_pair.user}@{NAME}:{pg_pair.primary.port}/postgres?sslmode=disable",
        "AGENT_DB_PASSWORD": pg_pair.password,
        "AGENT_DB_EXPECT_ROLE": role,
        "AGENT_TIMEOUT_SECONDS": "5",
    }
    return await asyncio.to_thread(run_agent, "check", env=env)


def entry(stdout: str) -> tuple[str, str, str]:
    """The database's three lines of the checklist (FAIL line up to its duration, message, hint), stripped."""
    lines = stdout.splitlines()
    assert lines[0] == "ecs-health-agent check: 1 failed", stdout
    (start,) = [i for i, line in enumerate(lines) if line.lstrip().startswith("FAIL  db [default]")]
    failure, message, hint = (line.strip() for line in lines[start : start + 3])
    return failure.rsplit(", ", 1)[0], message, hint


async def test_check_says_a_writer_name_reached_a_standby_and_passes_once_it_resolves_to_the_writer(
    pg_pair: Pair, tmp_path: Path
) -> None:
    hosts = tmp_path / "hosts.json"
    proc = await check(pg_pair, hosts, STANDBY_HOST, "writer")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failure, message, hint = entry(proc.stdout)
    assert failure.endswith(": server (db:read_only"), proc.stdout
    assert message == (
        f"expected a writer (expect_role=writer), but {NAME} resolved to {STANDBY_HOST}, where pg_is_in_recovery()"
        " is true: a hot standby"
    )
    assert hint.startswith(f"next: {NAME} resolved to {STANDBY_HOST}, and the server there is read-only")
    assert "Traceback" not in proc.stderr
    fixed = await check(pg_pair, hosts, "127.0.0.1", "writer")  # the endpoint points at the writer again
    assert fixed.returncode == 0, fixed.stdout


async def test_check_says_a_reader_name_reached_the_writer(pg_pair: Pair, tmp_path: Path) -> None:
    proc = await check(pg_pair, tmp_path / "hosts.json", "127.0.0.1", "reader")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failure, message, hint = entry(proc.stdout)
    assert failure.endswith(": server (db:not_a_reader"), proc.stdout
    assert message == (
        f"expected a reader (expect_role=reader), but {NAME} resolved to 127.0.0.1, where pg_is_in_recovery() is"
        " false and transaction_read_only is off"
    )
    assert hint.startswith(f"next: {NAME} resolved to 127.0.0.1, and the server there accepts writes")
