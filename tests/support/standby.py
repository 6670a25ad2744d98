"""A real primary and hot standby: a throwaway cluster (agent.sandbox.postgres) and a copy of it made with
`pg_basebackup -R`, streaming from it and answering read-only queries, as an Aurora PostgreSQL reader (or an old
writer after a failover) does.

The standby listens on 127.0.0.2 at the primary's port, so one host name can be pointed at either (the tests'
hosts file), as a failover moves a cluster endpoint: same port, another address.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import pytest

from agent.sandbox.postgres import ADMIN_USER, PostgresSandbox, SandboxError
from tests.support.databases import random_name, random_password

STANDBY_HOST = "127.0.0.2"  # loopback too: the whole 127.0.0.0/8 is the lo interface's
START_SECONDS = 30  # pg_ctl's wait for each server (the sandbox's `-t 30`): the pair is up within a minute or fails


class ReplicationPrimary(PostgresSandbox):
    """The throwaway cluster, also letting the admin connect for replication (pg_basebackup, the standby's
    walreceiver). wal_level=replica and max_wal_senders=10 are PostgreSQL's defaults; set anyway, in case."""

    def __init__(self) -> None:
        super().__init__(settings={"wal_level": "replica", "max_wal_senders": "4", "hot_standby": "on"})

    def _hba(self) -> str:
        return f"host replication {self.admin_user} {self.host}/32 trust\n" + super()._hba()


@dataclass(frozen=True, slots=True)
class Pair:
    """The two servers, a login role that exists on both, and its password; `seconds`: how long building took."""

    primary: PostgresSandbox
    standby: PostgresSandbox
    user: str
    password: str
    seconds: float


@contextmanager
def replicated_pair(user: str, password: str) -> Iterator[Pair]:
    """Start a primary with `user` (LOGIN, `password`), copy it with pg_basebackup -R, start the copy as a hot
    standby on STANDBY_HOST; remove both afterwards. SandboxError says why one could not be built."""
    started = time.monotonic()
    primary, standby = ReplicationPrimary(), PostgresSandbox()
    try:
        primary.start()
        literal = password.replace("'", "''")
        primary._run(
            str(primary.bindir / "psql"), "-h", primary.host, "-p", str(primary.port), "-U", ADMIN_USER,
            "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", f"CREATE ROLE {user} LOGIN PASSWORD '{literal}'",
        )  # fmt: skip
        standby._own(standby.root)
        primary._run(
            str(primary.bindir / "pg_basebackup"), "-D", str(standby.data), "-h", primary.host,
            "-p", str(primary.port), "-U", ADMIN_USER, "-R", "-X", "stream", "-c", "fast", "--no-sync",
        )  # fmt: skip
        with (standby.data / "postgresql.conf").open("a") as conf:  # later lines win over the primary's
            conf.write(f"listen_addresses = '{STANDBY_HOST}'\n")
        standby.host, standby.port = STANDBY_HOST, primary.port
        standby.start()
        yield Pair(primary, standby, user, password, time.monotonic() - started)
    finally:
        try:
            standby.cleanup()
        finally:
            primary.cleanup()


@pytest.fixture(scope="session")
def pg_pair() -> Iterator[Pair]:
    """A primary and its hot standby, built once per session when a test asks (about 2 s here)."""
    with ExitStack() as stack:
        try:
            built = stack.enter_context(replicated_pair(random_name("role"), random_password()))
        except SandboxError as exc:
            pytest.fail(f"cannot build a primary and a hot standby: {exc}", pytrace=False)
        assert built.seconds < 2 * START_SECONDS
        yield built
