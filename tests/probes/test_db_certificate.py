"""The server's TLS certificate, read on the login (agent/probes/drivers/certificate.py), against real servers: a
throwaway PostgreSQL and a private MariaDB serving a certificate made with `cryptography` (an RDS-shaped CA) that
expires in 10 days, or expired yesterday. Under require (CERT_NONE: the dict form of the certificate is empty) and
verify-full; `check` warns with the RDS CA rotation hint, /metrics has the gauge, an expired certificate under
verify-full fails with its date."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pymysql
import pytest
from pydantic import SecretStr

from agent.config.dsn import Engine, SslMode
from agent.outputs.metrics import build_registry, render
from agent.outputs.report import as_json
from agent.probes.base import ProbeResult, TargetState
from agent.probes.db import DatabaseProbe
from agent.probes.db_facts import CERTIFICATE_ISSUER, CERTIFICATE_NOT_AFTER, iso
from agent.probes.drivers.certificate import (
    ServerCertificate,
    _parsed_with_cryptography,
    certificate_details,
    rds_ca,
    server_certificate,
)
from agent.probes.runner import run_probe
from agent.runtime.state import AgentState
from agent.sandbox.postgres import PostgresSandbox
from agent.shared.reasons import Reason
from tests.faults.private_mariadb import PrivateMariaDB
from tests.outputs.test_metrics import parse, value
from tests.probes.test_db_facts import _promtool_check
from tests.support.agent_process import run_agent
from tests.support.certificates import Chain, make_chain
from tests.support.databases import (
    Server,
    cluster_server,
    pg_tls_cluster_serving,
    random_name,
    random_password,
    target_for,
)
from tests.support.results import make_config

TIMEOUT = 5.0
ISSUER = "CN=Amazon RDS test-region-1 Subordinate CA RSA2048 G1.A.1,O=Amazon Web Services\\, Inc.,C=US"
SUBJECT = "CN=localhost,O=ecs-health-agent tests,C=US"
WARNING = "        warning: the server's TLS certificate expires in 10.0 days, on "


@pytest.fixture(scope="module")
def soon() -> Chain:
    return make_chain(valid_days=10)


@pytest.fixture(scope="module")
def expired() -> Chain:
    return make_chain(valid_days=-1)


@pytest.fixture(scope="module")
def pg_soon(soon: Chain) -> Iterator[PostgresSandbox]:
    """A throwaway PostgreSQL whose certificate expires in 10 days."""
    yield from pg_tls_cluster_serving(soon.files())


@pytest.fixture(scope="module")
def pg_expired(expired: Chain) -> Iterator[PostgresSandbox]:
    """A throwaway PostgreSQL whose certificate expired a day ago."""
    yield from pg_tls_cluster_serving(expired.files())


async def pg_login(cluster: PostgresSandbox) -> tuple[str, str]:
    """A new role with a password on the cluster (its admin is trusted from loopback): (user, password)."""
    user, password = random_name("cert"), random_password()
    conn = await asyncpg.connect(cluster.admin_dsn(), ssl=False)
    try:
        await conn.execute(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")
    finally:
        await conn.close()
    return user, password


async def check(env: dict[str, str]) -> tuple[int, str]:
    """`ecs-health-agent check` in a process of its own; its exit code and output."""
    proc = await asyncio.to_thread(run_agent, "check", env={"AGENT_TIMEOUT_SECONDS": "5", **env})
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout


def dsn_env(server: Server, user: str, password: str, host: str, query: str, ca: Path | None) -> dict[str, str]:
    scheme = "postgresql" if server.engine.value == "postgresql" else "mysql"
    return {
        "AGENT_DB_DSN": f"{scheme}://{user}@{host}:{server.port}/{server.admin_database or ''}{query}",
        "AGENT_DB_PASSWORD": password,
        "AGENT_DB_SSLROOTCERT": str(ca) if ca else "",
    }


def line(out: str, start: str) -> str:
    """The one line of `out` that starts with `start` (stripped of its indentation)."""
    found = [text.strip() for text in out.splitlines() if text.strip().startswith(start)]
    assert len(found) == 1, out
    return found[0]


# -- PostgreSQL -------------------------------------------------------------------------------------------------


async def test_require_reads_the_certificate_and_check_warns_with_the_rotation_hint(
    pg_soon: PostgresSandbox, soon: Chain
) -> None:
    """sslmode=require (CERT_NONE): notAfter, subject and issuer are read anyway; `check` passes, warns 10 days
    ahead and names the RDS CA and the trust bundle."""
    user, password = await pg_login(pg_soon)
    code, out = await check(dsn_env(cluster_server(pg_soon), user, password, "127.0.0.1", "?sslmode=require", None))
    assert code == 0, out
    assert f"certificate_not_after={iso(soon.not_after)}" in out
    assert f"certificate_subject={SUBJECT}, certificate_issuer={ISSUER}" in out
    assert f"{WARNING}{iso(soon.not_after)}" in out
    note = line(out, "note: The TLS certificate")
    assert "(RDS CA rds-ca-rsa2048-g1)" in note and "rds-ca-2019 expired on 2024-08-22" in note
    assert "--ca-certificate-identifier" in note and "global/global-bundle.pem" in note


async def test_verify_full_reads_the_same_certificate(pg_soon: PostgresSandbox, soon: Chain) -> None:
    """verify-full with the CA as AGENT_DB_SSLROOTCERT: the same facts and the same warning."""
    user, password = await pg_login(pg_soon)
    env = dsn_env(cluster_server(pg_soon), user, password, "localhost", "?sslmode=verify-full", pg_soon.ca_cert)
    code, out = await check(env)
    assert code == 0, out
    assert "tls_verified=verify-full" in out and f"certificate_issuer={ISSUER}" in out
    assert f"{WARNING}{iso(soon.not_after)}" in out


async def test_a_verified_certificate_is_read_from_the_ssl_module_not_parsed_again(
    pg_soon: PostgresSandbox, soon: Chain
) -> None:
    """Under verification the ssl module has parsed the certificate: its fields give exactly what `cryptography`
    gives from the DER (the issuer's escaped comma included), and the DER is not parsed at all (garbage in its place
    changes nothing). Unverified, the DER goes through the same parser (CPython's _ssl._test_decode_cert), so no
    login loads `cryptography` (~10 MB of RSS) for its certificate."""
    user, password = await pg_login(pg_soon)
    context = ssl.create_default_context(cafile=str(pg_soon.ca_cert))
    conn = await asyncpg.connect(
        host="localhost", port=pg_soon.port, user=user, password=password, database="postgres", ssl=context
    )
    try:
        received = server_certificate(conn._transport.get_extra_info("ssl_object"))
    finally:
        await conn.close()
    assert received is not None and received.der and received.verified
    parsed = await certificate_details(received.der)  # as an unverified login reads it: the ssl module's parser
    assert parsed[CERTIFICATE_ISSUER] == ISSUER and parsed[CERTIFICATE_NOT_AFTER] == iso(soon.not_after)
    assert await _parsed_with_cryptography(received.der) == parsed  # the same three facts as cryptography gives
    assert await certificate_details(ServerCertificate(b"not a certificate", received.verified)) == parsed
    assert await certificate_details(ServerCertificate(b"not a certificate")) == {}  # unverified: DER or nothing


async def test_metrics_has_the_expiry_gauge(pg_soon: PostgresSandbox, soon: Chain) -> None:
    """/metrics: health_agent_db_certificate_expiry_timestamp_seconds is the notAfter (promtool accepts it);
    `check --json` and /status: `database.certificate` with the issuer that names the RDS CA, and the warning."""
    user, password = await pg_login(pg_soon)
    result = await login(cluster_server(pg_soon), user, password, SslMode.REQUIRE)
    assert result.ok, result.message
    state = AgentState(make_config(), [("db", result.target)])
    state.record(result)
    exposition = render(build_registry(state))
    samples = parse(exposition.decode())
    gauge = value(samples, "health_agent_db_certificate_expiry_timestamp_seconds", target=result.target)
    assert gauge == soon.not_after.timestamp()
    await _promtool_check(exposition)
    (probe,) = json.loads(as_json([result]))["probes"]  # /status's `database` entry has the same shape
    assert probe["database"]["certificate"] == {
        "not_after": iso(soon.not_after),
        "subject": SUBJECT,
        "issuer": ISSUER,
    }
    assert probe["database"]["warnings"][0].startswith("the server's TLS certificate expires in 10.0 days")


async def test_an_expired_certificate_under_verify_full_fails_with_its_date(
    pg_expired: PostgresSandbox, expired: Chain
) -> None:
    """verify-full refuses the expired certificate: `tls`, db:tls_expired, the notAfter and the issuer in the
    message, the rotation hint; the facts stay in the details (/metrics shows the past date)."""
    user, password = await pg_login(pg_expired)
    server = cluster_server(pg_expired)
    result = await login(server, user, password, SslMode.VERIFY_FULL, "localhost", pg_expired.ca_cert)
    assert (result.reason, result.code) == (Reason.TLS, "db:tls_expired"), result.message
    assert result.message.startswith(f"the server's TLS certificate expired on {iso(expired.not_after)} (notAfter)")
    assert "certificate has expired" in result.message and "rds-ca-rsa2048-g1" in result.message
    assert "--ca-certificate-identifier" in result.hint
    assert result.details["certificate_not_after"] == iso(expired.not_after)
    code, out = await check(dsn_env(server, user, password, "localhost", "?sslmode=verify-full", pg_expired.ca_cert))
    assert code != 0
    assert "log in to the database and run SELECT 1: tls (db:tls_expired, " in line(out, "FAIL  db")
    assert line(out, "the server's TLS certificate expired on").startswith(
        f"the server's TLS certificate expired on {iso(expired.not_after)}"
    )
    assert "modify-db-instance" in line(out, "next:")


async def test_an_expired_certificate_under_require_passes_with_a_warning(pg_expired: PostgresSandbox) -> None:
    """require does not verify, so the login works; the warning says it expired, and the gauge is in the past."""
    user, password = await pg_login(pg_expired)
    result = await login(cluster_server(pg_expired), user, password, SslMode.REQUIRE)
    assert result.ok and "The TLS certificate of 127.0.0.1" in result.message and "it expired on" in result.message
    assert datetime.fromisoformat(result.details["certificate_not_after"]) < datetime.now(UTC)


async def test_the_certificate_note_follows_an_unchecked_login_note(pg_soon: PostgresSandbox) -> None:
    """A pass with two things to say (pg_hba.conf trusts the admin; the certificate expires soon) says both."""
    result = await login(cluster_server(pg_soon), pg_soon.admin_user, random_password(), SslMode.REQUIRE)
    assert result.ok and result.details["password_checked"] == "no"
    unchecked, renew = result.message.split("; The TLS certificate of ", 1)
    assert unchecked.startswith("the login worked, but the server never asked for a password")
    assert renew.startswith("127.0.0.1:") and "rds-ca-rsa2048-g1" in renew


async def login(
    server: Server, user: str, password: str, mode: SslMode, host: str = "127.0.0.1", ca: Path | None = None
) -> ProbeResult:
    target = target_for(
        server, user, host=host, password=SecretStr(password), sslmode=mode, sslrootcert=str(ca) if ca else None
    )
    return await run_probe(DatabaseProbe(target, TargetState(), timeout=TIMEOUT), TIMEOUT)


def test_rds_ca_names_the_ca_an_issuer_string_names() -> None:
    """The CA identifiers of the RDS API, from the issuer string; None for another CA."""
    region = "CN=Amazon RDS eu-west-1 Subordinate CA {} G1.A.3,OU=Amazon RDS,O=Amazon Web Services\\, Inc.,C=US"
    assert [rds_ca(region.format(alg)) for alg in ("RSA2048", "RSA4096", "ECC384")] == [
        "rds-ca-rsa2048-g1",
        "rds-ca-rsa4096-g1",
        "rds-ca-ecc384-g1",
    ]
    assert rds_ca("CN=Amazon RDS eu-west-1 2019 CA,OU=Amazon RDS,O=Amazon Web Services\\, Inc.") == "rds-ca-2019"
    assert rds_ca("CN=R11,O=Let's Encrypt,C=US") is None and rds_ca(None) is None


# -- MariaDB ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_mariadb(soon: Chain) -> Iterator[tuple[PrivateMariaDB, Path]]:
    """A private MariaDB with TLS (the machine's shared one has none), serving the 10-day chain; its cert dir."""
    server = PrivateMariaDB()
    try:
        ca, cert, key = soon.write(server.root)
        if os.geteuid() == 0:
            for path in (ca, cert, key):
                shutil.chown(path, "mysql", "mysql")
        server.install()
        server.start(extra=(f"--ssl-ca={ca}", f"--ssl-cert={cert}", f"--ssl-key={key}"))
        yield server, server.root
    finally:
        server.cleanup()


def mariadb_user(server: PrivateMariaDB) -> tuple[str, str]:
    user, password = random_name("app"), random_password()
    with pymysql.connect(host=server.host, port=server.port, user="root", connect_timeout=5) as conn:
        conn.cursor().execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (password,))
    return user, password


async def test_mariadb_reads_the_certificate_under_require_and_verify_full(
    tls_mariadb: tuple[PrivateMariaDB, Path], soon: Chain, expired: Chain
) -> None:
    """MariaDB (aiomysql): the same facts under require and verify-full; then, with the expired chain loaded
    (FLUSH SSL), verify-full fails with db:tls_expired and the date (the error is aiomysql's 2003's cause)."""
    mariadb, certs = tls_mariadb
    server = Server(Engine.MYSQL, mariadb.host, mariadb.port, "root", "", None)
    user, password = await asyncio.to_thread(mariadb_user, mariadb)
    for mode, host, ca in ((SslMode.REQUIRE, "127.0.0.1", None), (SslMode.VERIFY_FULL, "localhost", certs / "ca.pem")):
        result = await login(server, user, password, mode, host, ca)
        assert result.ok, result.message
        assert result.details["certificate_not_after"] == iso(soon.not_after), mode
        assert (result.details["certificate_subject"], result.details["certificate_issuer"]) == (SUBJECT, ISSUER)
        assert "it expires in 10.0 days" in result.message
    await asyncio.to_thread(expired.write, certs)
    await asyncio.to_thread(_flush_ssl, mariadb)
    result = await login(server, user, password, SslMode.VERIFY_FULL, "localhost", certs / "ca.pem")
    assert (result.reason, result.code) == (Reason.TLS, "db:tls_expired"), result.message
    assert f"expired on {iso(expired.not_after)}" in result.message


def _flush_ssl(server: PrivateMariaDB) -> None:
    with pymysql.connect(host=server.host, port=server.port, user="root", connect_timeout=5) as conn:
        conn.cursor().execute("FLUSH SSL")  # MariaDB 10.4+: reload ssl_cert, ssl_key and ssl_ca
