"""A pass the server never checked (issue 13, section 3): when the server let the login in without checking its
password (PostgreSQL trust, MariaDB --skip-grant-tables), the pass says so; when it checked (SCRAM, md5,
cleartext, a MariaDB account), nothing is said. Real servers throughout."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from agent.config.dsn import Engine, SslMode
from agent.config.models import TargetConfig
from agent.probes.base import ProbeResult, TargetState
from agent.probes.db import DatabaseProbe
from agent.probes.drivers.pg_auth import AuthRequests
from agent.probes.runner import run_probe
from agent.sandbox.postgres import PostgresSandbox
from tests.faults.private_mariadb import PrivateMariaDB
from tests.support.databases import MySqlAdmin, Server, random_password, target_for
from tests.support.pg_methods import CLEARTEXT, MD5, MethodsAdmin

TIMEOUT = 3.0
UNCHECKED = "the login worked, but the server never asked for a password"
WOULD_HAVE_WORKED = "a wrong password would have worked too"


async def check(target: TargetConfig, state: TargetState | None = None, **probe: object) -> ProbeResult:
    return await run_probe(DatabaseProbe(target, state or TargetState(), timeout=TIMEOUT, **probe), TIMEOUT)  # type: ignore[arg-type]


def cluster_server(cluster: PostgresSandbox) -> Server:
    return Server(Engine.POSTGRESQL, cluster.host, cluster.port, cluster.admin_user, "", "postgres")


async def test_trust_with_a_wrong_password_passes_with_a_note(pg_cluster: PostgresSandbox) -> None:
    """The issue's case: pg_hba.conf trusts the user, AGENT_DB_PASSWORD is wrong: a pass, and it says so."""
    target = target_for(cluster_server(pg_cluster), pg_cluster.admin_user, password=SecretStr(random_password()))
    result = await check(target)
    assert result.ok
    assert result.message.startswith(UNCHECKED) and "pg_hba.conf trust" in result.message
    assert result.message.endswith(WOULD_HAVE_WORKED)
    assert result.details["password_checked"] == "no"
    assert "note" not in result.details, "the note is the result's message, not a detail"


async def test_the_note_stays_on_the_kept_connection(pg_cluster: PostgresSandbox) -> None:
    target = target_for(cluster_server(pg_cluster), pg_cluster.admin_user, password=SecretStr(random_password()))
    probe = DatabaseProbe(target, TargetState(), timeout=TIMEOUT, keep_connection=True)
    try:
        first, second = await run_probe(probe, TIMEOUT), await run_probe(probe, TIMEOUT)
    finally:
        await probe.close()
    assert second.details["connection"] == "kept"
    assert second.message == first.message != ""


async def test_trust_with_an_iam_token_says_a_wrong_token_would_have_worked(
    pg_tls_cluster: PostgresSandbox,
) -> None:
    target = target_for(
        cluster_server(pg_tls_cluster), pg_tls_cluster.admin_user, sslmode=SslMode.REQUIRE, iam_auth=True,
        region="eu-west-1",
    )  # fmt: skip
    result = await check(target, TargetState(token=SecretStr(f"signed-token-{random_password()}")))
    assert result.ok and result.details["login"] == "iam"
    assert result.message.endswith("a wrong token would have worked too")


@pytest.mark.parametrize("group", [None, MD5, CLEARTEXT], ids=["scram-sha-256", "md5", "password"])
async def test_a_server_that_asks_for_the_password_gets_no_note(methods_admin: MethodsAdmin, group: str | None) -> None:
    """Each way PostgreSQL asks (SASL, MD5, cleartext) is seen: no note, and a wrong password fails."""
    cluster = methods_admin.cluster
    user, password = await methods_admin.role(group)
    target = target_for(cluster_server(cluster), user, password=SecretStr(password), sslmode=SslMode.REQUIRE)
    result = await check(target)
    assert (result.ok, result.message) == (True, ""), result.message
    assert "password_checked" not in result.details
    wrong = await check(target.model_copy(update={"password": SecretStr(random_password())}))
    assert (wrong.ok, wrong.code) == (False, "pg:28P01")


@pytest.mark.parametrize(
    "stream",
    [
        b"R\x00\x00\x00\x08\x00\x00\x00\x00",  # AuthenticationOk first: trust
        b"R\x00\x00\x00\x08\x00\x00\x00\x00S\x00\x00\x00\x19application_name\x00x\x00",
    ],
)
def test_auth_flow_reads_authentication_ok_first_as_not_asked(stream: bytes) -> None:
    for cut in range(1, len(stream)):  # any split of the stream
        flow = AuthRequests()
        flow.asks_cleartext(stream[:cut])
        flow.asks_cleartext(stream[cut:])
        assert (flow.authenticated, flow.asked, flow.malformed) == (True, False, False)


def test_auth_flow_reads_a_request_then_ok_as_asked() -> None:
    md5 = b"R\x00\x00\x00\x0c\x00\x00\x00\x05salt"
    flow = AuthRequests()
    for byte in md5 + b"R\x00\x00\x00\x08\x00\x00\x00\x00":
        assert not flow.asks_cleartext(bytes([byte]))
    assert (flow.authenticated, flow.asked) == (True, True)


def test_auth_flow_calls_a_stream_that_is_not_postgresql_garbled() -> None:
    flow = AuthRequests()
    flow.asks_cleartext(b"J\x00\x00\x00\x0a\x35\x2e\x35\x2e")  # a MySQL greeting's first bytes
    assert flow.malformed


# -- MySQL / MariaDB ----------------------------------------------------------------------------------------


async def test_a_mariadb_account_with_a_password_gets_no_note(mysql_admin: MySqlAdmin) -> None:
    password = random_password()
    user = await mysql_admin.user(password)
    result = await check(target_for(mysql_admin.server, user, password=SecretStr(password)))
    assert (result.ok, result.message) == (True, ""), result.message


@pytest.fixture(scope="module")
def skip_grants_mariadb() -> Iterator[PrivateMariaDB]:
    """A private MariaDB started with --skip-grant-tables: any user and any password log in."""
    server = PrivateMariaDB()
    try:
        server.install()
        server.start(extra=("--skip-grant-tables",))
        yield server
    finally:
        server.cleanup()


async def test_skip_grant_tables_passes_with_a_note(skip_grants_mariadb: PrivateMariaDB) -> None:
    server = Server(Engine.MYSQL, skip_grants_mariadb.host, skip_grants_mariadb.port, "root", "", None)
    result = await check(target_for(server, "app", password=SecretStr(random_password())))
    assert result.ok
    assert result.message == (
        "the login worked, but the server runs with --skip-grant-tables (CURRENT_USER() is '@'), which checks no "
        "password at all: a wrong password would have worked too"
    )
    assert result.details["password_checked"] == "no"
