"""asyncpg's error table, entry by entry, with real exception objects; and the PostgreSQL hints."""

from __future__ import annotations

import socket
import ssl
from dataclasses import replace

import asyncpg
import pytest
from pydantic import SecretStr

from agent.config.dsn import Engine, SslMode
from agent.probes.base import TargetState
from agent.probes.db import DatabaseProbe
from agent.probes.drivers import pg
from agent.shared.reasons import Failure, Reason
from tests.support.databases import Server, target_for

REJECTED_SSL = 'PostgreSQL server at "db.internal:5432" rejected SSL upgrade'
SSL_EXCHANGE = 'PostgreSQL server at "db:5432": server sent an error response during SSL exchange; check logs'

# (exception, reason, code, the table key it exercises)
CASES: list[tuple[BaseException, Reason, str, object]] = [
    (asyncpg.InvalidPasswordError('password authentication failed for user "app"'), Reason.AUTH, "pg:28P01", "28P01"),
    (
        asyncpg.InvalidAuthorizationSpecificationError('pg_hba.conf rejects connection for host "10.0.0.1"'),
        Reason.AUTH,
        "pg:28000",
        "28000",
    ),
    (asyncpg.InsufficientPrivilegeError("permission denied for database orders"), Reason.AUTH, "pg:42501", "42501"),
    (asyncpg.InvalidCatalogNameError('database "orders" does not exist'), Reason.CONFIG, "pg:3D000", "3D000"),
    (asyncpg.TooManyConnectionsError('too many connections for role "app"'), Reason.SERVER, "pg:53300", "53300"),
    (asyncpg.exceptions.OutOfMemoryError("out of memory"), Reason.SERVER, "pg:53200", "53"),
    (asyncpg.CannotConnectNowError("the database system is starting up"), Reason.SERVER, "pg:57P03", "57P03"),
    (
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        Reason.SERVER,
        "pg:57P01",
        "57P01",
    ),
    (asyncpg.exceptions.CrashShutdownError("crash"), Reason.SERVER, "pg:57P02", "57"),
    (asyncpg.exceptions.ConnectionFailureError("connection failure"), Reason.NETWORK, "pg:08006", "08"),
    (asyncpg.exceptions.InvalidAuthorizationSpecificationError("x"), Reason.AUTH, "pg:28000", "28000"),
    (
        ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
        Reason.TLS,
        "db:tls_verify",
        ssl.SSLCertVerificationError,
    ),
    (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"), Reason.TLS, "db:tls", ssl.SSLError),
    (socket.gaierror(-2, "Name or service not known"), Reason.DNS, "db:dns", socket.gaierror),
    (
        ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 1)"),
        Reason.NETWORK,
        "db:refused",
        ConnectionRefusedError,
    ),
    (ConnectionResetError(104, "Connection reset by peer"), Reason.NETWORK, "db:reset", ConnectionResetError),
    (TimeoutError(), Reason.TIMEOUT, "db:timeout", TimeoutError),
    (ConnectionError(REJECTED_SSL), Reason.TLS, "db:tls_not_negotiated", ConnectionError),
    (ConnectionError(SSL_EXCHANGE), Reason.SERVER, "pg:ssl_exchange", ConnectionError),
    (ConnectionError("unexpected connection_lost() call"), Reason.NETWORK, "db:network", ConnectionError),
    (OSError(113, "No route to host"), Reason.NETWORK, "db:network", OSError),
    (asyncpg.InterfaceError("connection is closed"), Reason.NETWORK, "pg:connection_closed", asyncpg.InterfaceError),
    (
        asyncpg.InternalClientError("cannot switch to state 11; another operation (2) is in progress"),
        Reason.NETWORK,
        "pg:client_state",
        asyncpg.InternalClientError,
    ),
    (
        asyncpg.ClientConfigurationError("sslmode parameter must be one of ..."),
        Reason.CONFIG,
        "pg:client_config",
        asyncpg.ClientConfigurationError,
    ),
]
# Class-level keys are reached through codes the table does not list on their own.
CLASS_CASES = {"28": asyncpg.exceptions.InvalidAuthorizationSpecificationError}


@pytest.mark.parametrize(("exc", "reason", "code", "key"), CASES, ids=[c[2] + ":" + type(c[0]).__name__ for c in CASES])
def test_table_entry_gives_reason_code_and_the_servers_words(
    exc: BaseException, reason: Reason, code: str, key: object
) -> None:
    failure = pg.classify(exc)
    assert failure is not None
    assert (failure.reason, failure.code) == (reason, code)
    words = " ".join(str(exc).split())
    assert words in failure.message, "the server's own text is kept for the person reading it"


def test_every_table_key_is_exercised() -> None:
    read_only = {"25006"}  # db:read_only, exercised by a real write on a standby in tests/probes/test_db_role.py
    covered = {key for *_, key in CASES} | set(CLASS_CASES) | read_only
    assert covered == set(pg.TABLE)


def test_sqlstate_class_fallback_keeps_the_exact_code() -> None:
    """An auth-class SQLSTATE the table does not list still reads as auth, with its own code."""

    class OddAuthError(asyncpg.PostgresError):  # type: ignore[misc]  # asyncpg ships no types
        sqlstate = "28ZZZ"

    failure = pg.classify(OddAuthError("odd"))
    assert failure == Failure(Reason.AUTH, "pg:28ZZZ", "login rejected: odd")


def test_unknown_sqlstate_is_unknown_but_keeps_a_stable_code() -> None:
    failure = pg.classify(asyncpg.exceptions.UndefinedTableError('relation "x" does not exist'))
    assert failure is not None and (failure.reason, failure.code) == (Reason.UNKNOWN, "pg:42P01")


def test_errors_outside_the_table_are_left_to_the_edge() -> None:
    assert pg.classify(ValueError("not a driver error")) is None
    assert pg.classify(KeyError("x")) is None


SERVER = Server(Engine.POSTGRESQL, "orders.abc.eu-west-1.rds.amazonaws.com", 5432, "postgres", "", None)


def probe(iam: bool) -> DatabaseProbe:
    extra = {"iam_auth": True, "region": "eu-west-1"} if iam else {"password": SecretStr("pw-1234567")}
    target = target_for(SERVER, "chimera_app", database="orders", sslmode=SslMode.REQUIRE, **extra)
    return DatabaseProbe(target, TargetState(), timeout=2)


def test_iam_auth_hint_gives_the_grant_and_the_policy_resource() -> None:
    hint = probe(iam=True).hint(Failure(Reason.AUTH, "pg:28P01", "PAM authentication failed"))
    assert "GRANT rds_iam TO chimera_app;" in hint
    assert "rolname = 'chimera_app'" in hint
    assert "rds-db:connect" in hint
    assert "arn:aws:rds-db:eu-west-1:<account-id>:dbuser:<DbiResourceId>/chimera_app" in hint


def test_password_auth_hint_names_the_user_and_the_task_definition() -> None:
    hint = probe(iam=False).hint(Failure(Reason.AUTH, "pg:28P01", "password authentication failed"))
    assert "password for chimera_app was rejected" in hint and "task definition" in hint
    assert "rds_iam" not in hint


@pytest.mark.parametrize(
    ("code", "reason", "expected"),
    [
        ("pg:3D000", Reason.CONFIG, "Database orders does not exist"),
        ("pg:53300", Reason.SERVER, "max_connections"),
        ("pg:28000", Reason.AUTH, "pg_hba.conf"),
        ("db:dns", Reason.DNS, "resolve only inside their VPC"),
        ("db:tls_not_negotiated", Reason.TLS, "sslmode=require"),
        ("db:tls_verify", Reason.TLS, "global-bundle.pem"),
    ],
)
def test_hints_fill_in_the_targets_values(code: str, reason: Reason, expected: str) -> None:
    assert expected in probe(iam=False).hint(Failure(reason, code, "detail"))


def test_timeout_hint_depends_on_where_it_stopped() -> None:
    p = probe(iam=False)
    timeout = Failure(Reason.TIMEOUT, "db:timeout", "no answer")
    p.step = "TCP connect to orders.abc.eu-west-1.rds.amazonaws.com:5432"
    assert "security group allows inbound TCP 5432" in p.hint(timeout)
    p.step = "TLS and login as chimera_app"
    assert "accepted the TCP connection" in p.hint(timeout)


# RDS Proxy's PostgreSQL answers to a throttled login (RDS User Guide, "Troubleshooting for RDS Proxy"). The guide
# gives no SQLSTATE: whichever the proxy sends, the message decides.
PROXY_THROTTLING = [
    "The IAM authentication failed because of too many competing requests.",
    "Rate of connection to proxy exceeded 100.",
]


@pytest.mark.parametrize("text", PROXY_THROTTLING)
@pytest.mark.parametrize(
    "error",
    [
        asyncpg.InvalidAuthorizationSpecificationError,
        asyncpg.TooManyConnectionsError,
        asyncpg.exceptions.ConnectionRejectionError,
    ],
)
def test_rds_proxy_throttling_is_throttled_whatever_the_sqlstate(text: str, error: type[Exception]) -> None:
    """Not auth under 28000, not server under 53300: throttled, with the SQLSTATE kept in the message."""
    failure = pg.classify(error(text))
    assert failure is not None and (failure.reason, failure.code) == (Reason.THROTTLED, "pg:throttled")
    assert text in failure.message and f"SQLSTATE {error.sqlstate}" in failure.message  # type: ignore[attr-defined]


def test_throttling_hint_says_the_limit_is_shared_and_the_agent_backs_off() -> None:
    hint = probe(iam=True).hint(Failure(Reason.THROTTLED, "pg:throttled", "RDS Proxy is throttling IAM logins"))
    assert "shared by every client" in hint and "200 new IAM-authenticated connections per second" in hint
    assert "backs off" in hint and "orders.abc.eu-west-1.rds.amazonaws.com" in hint


# 28000's causes, as PostgreSQL words them (auth.c, miscinit.c; "SSL off/on" before PostgreSQL 14).
HBA = 'no pg_hba.conf entry for host "10.0.0.1", user "app", database "orders"'
KIND_CASES: list[tuple[str, str]] = [
    (f"{HBA}, no encryption", "pg:28000:hba_plaintext"),
    (f"{HBA}, SSL off", "pg:28000:hba_plaintext"),
    ('pg_hba.conf rejects connection for host "10.0.0.1", user "app", database "orders", no encryption',
     "pg:28000:hba_plaintext"),
    (f"{HBA}, SSL encryption", "pg:28000:hba_tls"),
    (f"{HBA}, SSL on", "pg:28000:hba_tls"),
    (f"{HBA}, GSS encryption", "pg:28000:hba_tls"),
    ('PAM authentication failed for user "app"', "pg:28000:pam"),
    ('role "app" is not permitted to log in', "pg:28000:nologin"),
    ('role "app" does not exist', "pg:28000:no_role"),
    ('Ident authentication failed for user "app"', "pg:28000"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "code"), KIND_CASES, ids=[c[1] + ":" + c[0][:24] for c in KIND_CASES])
def test_each_28000_cause_has_its_own_code(text: str, code: str) -> None:
    failure = pg.classify(asyncpg.InvalidAuthorizationSpecificationError(text))
    assert failure is not None and (failure.reason, failure.code) == (Reason.AUTH, code)
    assert text in failure.message


def test_every_28000_kind_is_exercised_and_has_a_hint() -> None:
    assert {fragment for kinds in pg.KINDS.values() for fragment in kinds} <= {
        fragment for text, _ in KIND_CASES for fragment in pg.KINDS["28000"] if fragment in text.lower()
    }
    assert {rule.code for rule in pg.KINDS["28000"].values()} <= set(pg.HINTS)


def test_with_iam_a_pam_failure_gets_the_iam_checklist_not_pg_hba() -> None:
    """RDS answers a rejected IAM token with 28000 PAM: the checklist, even with sslmode=require set."""
    hint = probe(iam=True).hint(Failure(Reason.AUTH, "pg:28000:pam", 'PAM authentication failed for user "x"'))
    assert "GRANT rds_iam TO chimera_app;" in hint and "rds-db:connect" in hint
    assert "host orders.abc.eu-west-1.rds.amazonaws.com, port 5432, user chimera_app, region eu-west-1" in hint
    assert "pg_hba" not in hint and "force_ssl" not in hint and "sslmode" not in hint


def test_without_iam_a_pam_failure_says_the_user_is_an_iam_user() -> None:
    hint = probe(iam=False).hint(Failure(Reason.AUTH, "pg:28000:pam", "PAM authentication failed"))
    assert "member of rds_iam" in hint and "REVOKE rds_iam FROM chimera_app;" in hint


@pytest.mark.parametrize(
    "host",
    [
        "orders.abc123.eu-west-1.rds.amazonaws.com",
        "orders.cluster-abc123.eu-west-1.rds.amazonaws.com",
        "orders.cluster-ro-abc123.us-gov-west-1.rds.amazonaws.com",
        "orders-proxy.proxy-abc123.eu-west-1.rds.amazonaws.com",
        "orders.abc123.cn-north-1.rds.amazonaws.com.cn",
    ],
)
def test_the_vpc_dns_sentence_is_for_rds_endpoints(host: str) -> None:
    target = target_for(replace(SERVER, host=host), "chimera_app", password=SecretStr("pw-1234567"))
    hint = DatabaseProbe(target, TargetState(), timeout=2).hint(Failure(Reason.DNS, "db:dns", "no such host"))
    assert "RDS endpoints resolve only inside their VPC" in hint and host in hint


@pytest.mark.parametrize("host", ["db.internal", "orders.example.com", "10.0.0.5", "rds.amazonaws.com.evil.io"])
def test_other_hosts_get_a_dns_hint_without_rds(host: str) -> None:
    target = target_for(replace(SERVER, host=host), "chimera_app", password=SecretStr("pw-1234567"))
    for code in ("db:dns", "mysql:2003:dns"):
        hint = DatabaseProbe(target, TargetState(), timeout=2).hint(Failure(Reason.DNS, code, "no such host"))
        assert "RDS" not in hint and host in hint and "private hosted zone" in hint
