"""A throwaway PostgreSQL cluster (TLS on) whose pg_hba.conf gives each authentication method and each way of
answering 28000 a role group of its own, so every case is a real server's answer, not a made-up exception.

- the admin and GHOST: trust (in without a password; GHOST does not exist: 'role "..." does not exist')
- members of TLS_ONLY without TLS: hostnossl reject ('pg_hba.conf rejects connection ..., no encryption')
- members of MD5 / CLEARTEXT: md5 / password (asked: AuthenticationMD5Password / AuthenticationCleartextPassword)
- members of PAM: pam, with a PAM service that does not exist ('PAM authentication failed', as RDS answers a bad
  IAM token)
- everyone else, database postgres: scram-sha-256 (asked: AuthenticationSASL)
- everyone else, any other database: no rule ('no pg_hba.conf entry for host ..., no encryption' or
  '..., SSL encryption')
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from agent.sandbox.postgres import PostgresSandbox, SandboxError
from tests.support.databases import random_name, random_password

GHOST = "eha_m_ghost"
TLS_ONLY = "eha_m_tls_only"
MD5 = "eha_m_md5"
CLEARTEXT = "eha_m_cleartext"
PAM = "eha_m_pam"
GROUPS = (TLS_ONLY, MD5, CLEARTEXT, PAM)
NO_RULE_DATABASE = "eha_m_nowhere"  # no line of pg_hba.conf names it (it need not exist: the rules come first)


class MethodsCluster(PostgresSandbox):
    """PostgresSandbox with the pg_hba.conf above."""

    def _hba(self) -> str:
        host = f"{self.host}/32"
        pam_service = f"eha-no-such-service-{secrets.token_hex(4)}"  # PAM falls back to 'other', which denies
        return (
            f"host all {self.admin_user} {host} trust\n"
            f"host all {GHOST} {host} trust\n"
            f"hostnossl all +{TLS_ONLY} {host} reject\n"
            f"host all +{MD5} {host} md5\n"
            f"host all +{CLEARTEXT} {host} password\n"
            f"host all +{PAM} {host} pam pamservice={pam_service}\n"
            f"host postgres all {host} scram-sha-256\n"
        )


class MethodsAdmin:
    """Roles on the cluster: `role(group)` makes a login role with a password (md5-stored for MD5)."""

    def __init__(self, cluster: MethodsCluster, conn: asyncpg.Connection) -> None:
        self.cluster = cluster
        self.conn = conn
        self.roles: list[str] = []

    async def role(self, group: str | None = None, *, login: bool = True) -> tuple[str, str]:
        """(name, password) of a new role, in `group` if given."""
        name, password = random_name(), random_password()
        encryption = "md5" if group == MD5 else "scram-sha-256"
        await self.conn.execute(f"SET password_encryption = '{encryption}'")
        can = "LOGIN" if login else "NOLOGIN"
        member = f" IN ROLE {group}" if group else ""
        await self.conn.execute(f"CREATE ROLE {name} {can} PASSWORD '{password}'{member}")
        self.roles.append(name)
        return name, password

    async def cleanup(self) -> None:
        for name in self.roles:
            await self.conn.execute(f"DROP ROLE {name}")


@pytest.fixture(scope="session")
def methods_cluster() -> Iterator[MethodsCluster]:
    """The cluster, started once for the session."""
    try:
        cluster = MethodsCluster(ssl=True)
    except SandboxError as exc:
        pytest.fail(f"cannot build the pg_hba.conf methods cluster: {exc}", pytrace=False)
    try:
        try:
            cluster.start()
        except SandboxError as exc:
            pytest.fail(f"cannot start the pg_hba.conf methods cluster: {exc}", pytrace=False)
        yield cluster
    finally:
        cluster.cleanup()


@pytest.fixture
async def methods_admin(methods_cluster: MethodsCluster) -> AsyncIterator[MethodsAdmin]:
    """The trusted admin of the methods cluster, with the groups created; drops this test's roles afterwards."""
    conn = await asyncpg.connect(
        host=methods_cluster.host, port=methods_cluster.port, user=methods_cluster.admin_user, ssl=False
    )
    admin = MethodsAdmin(methods_cluster, conn)
    try:
        for group in GROUPS:
            if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", group):
                await conn.execute(f"CREATE ROLE {group} NOLOGIN")
        yield admin
    finally:
        try:
            await admin.cleanup()
        finally:
            await conn.close()
