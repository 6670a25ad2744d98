"""Fixtures of the fault suite (its own PostgreSQL cluster, admin handles, a hosts file), the slow switch, and
the matrix printed at the end of the run and written to test-artifacts/fault-matrix.md."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from agent.sandbox.postgres import PostgresSandbox, SandboxError
from tests.faults import matrix
from tests.faults.servers import HostsFile, MyControl, PgControl
from tests.support import slow
from tests.support.databases import Server

# Low enough to fill in a moment; superuser_reserved_connections (3) keeps the admin's own way in.
MAX_CONNECTIONS = 16


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip `slow` tests unless --run-slow / EHA_FULL_FAULTS=1 (tests.support.slow does it when it is loaded)."""
    if not config.pluginmanager.has_plugin("tests.support.slow"):
        slow.skip_slow(config, items)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the fault matrix and the leak figures, and write them to test-artifacts/fault-matrix.md."""
    if not matrix.ROWS and not matrix.FIGURES:
        return
    path = matrix.write(matrix.ROWS, matrix.FIGURES)
    terminalreporter.section("fault matrix")
    if matrix.ROWS:
        terminalreporter.write_line(matrix.render(matrix.ROWS))
    for line in matrix.FIGURES:
        terminalreporter.write_line(f"- {line}")
    terminalreporter.write_line(f"(written to {path})")


@pytest.fixture(scope="session")
def fault_cluster() -> Iterator[PostgresSandbox]:
    """The suite's own PostgreSQL cluster (TLS on, max_connections low): stopped, reconfigured and filled at will."""
    try:
        cluster = PostgresSandbox(ssl=True, settings={"max_connections": str(MAX_CONNECTIONS)})
        cluster.start()
    except SandboxError as exc:
        pytest.fail(f"cannot start the fault suite's PostgreSQL cluster: {exc}", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.cleanup()


@pytest.fixture(scope="session")
async def pg_control(fault_cluster: PostgresSandbox) -> AsyncIterator[PgControl]:
    control = PgControl(fault_cluster)
    try:
        yield control
    finally:
        await control.close()


@pytest.fixture(scope="session")
async def my_control(mysql_server: Server) -> AsyncIterator[MyControl]:
    control = MyControl(mysql_server)
    try:
        yield control
    finally:
        await control.close()


@pytest.fixture(scope="session")
def hosts_file(tmp_path_factory: pytest.TempPathFactory) -> HostsFile:
    """Names the agent resolves through the tests' resolver (tests/support/resolver): set and removed by the tests."""
    path: Path = tmp_path_factory.mktemp("hosts") / "hosts.json"
    return HostsFile(path)
