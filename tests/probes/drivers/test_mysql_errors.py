"""aiomysql/PyMySQL's error table, entry by entry, with real exception objects; and the MySQL hints."""

from __future__ import annotations

import socket
import ssl
from typing import Any

import pytest
from pydantic import SecretStr
from pymysql.err import InterfaceError, InternalError, OperationalError

from agent.config.dsn import Engine, SslMode
from agent.probes.base import TargetState
from agent.probes.db import DatabaseProbe
from agent.probes.drivers import mysql
from agent.shared.reasons import Failure, Reason
from tests.support.databases import Server, target_for

CANT_CONNECT = "Can't connect to MySQL server on 'db.internal'"


def raised_from(exc: BaseException, cause: BaseException | None) -> BaseException:
    """The exception as aiomysql really raises it: `raise OperationalError(2003, ...) from cause`."""
    try:
        raise exc from cause
    except type(exc) as caught:
        return caught


def server_error(errno: int, text: str) -> OperationalError:
    return OperationalError(errno, text)


# An expired password is one code on both engines (PostgreSQL's is told from a 28P01 by the probe).
OWN_CODES = {1862: "db:password_expired", 1820: "db:password_expired"}
ERRNO_CASES: list[tuple[int, str, Reason]] = [
    (1045, "Access denied for user 'app'@'10.0.0.1' (using password: YES)", Reason.AUTH),
    (1698, "Access denied for user 'nobody'@'10.0.0.1'", Reason.AUTH),
    (
        1862,
        "Your password has expired. To log in you must change it using a client that supports expired passwords.",
        Reason.AUTH,
    ),
    (1820, "You must reset your password using ALTER USER statement before executing this statement.", Reason.AUTH),
    (1044, "Access denied for user 'app'@'%' to database 'orders'", Reason.AUTH),
    (1130, "Host '10.0.0.1' is not allowed to connect to this MariaDB server", Reason.AUTH),
    (1049, "Unknown database 'orders'", Reason.CONFIG),
    (1251, "Client does not support authentication protocol requested by server", Reason.CONFIG),
    (2059, "Authentication plugin 'b'dialog'' not configured", Reason.CONFIG),
    (1040, "Too many connections", Reason.SERVER),
    (1203, "User app already has more than 'max_user_connections' active connections", Reason.SERVER),
    (1226, "User 'app' has exceeded the 'max_user_connections' resource (current value: 1)", Reason.SERVER),
    (1129, "Host '10.0.0.1' is blocked because of many connection errors", Reason.SERVER),
    (1053, "Server shutdown in progress", Reason.SERVER),
    (3159, "Connections using insecure transport are prohibited while --require_secure_transport=ON.", Reason.TLS),
    (2013, "Lost connection to MySQL server during query", Reason.NETWORK),
    (2006, "MySQL server has gone away", Reason.NETWORK),
]


@pytest.mark.parametrize(("errno", "text", "reason"), ERRNO_CASES, ids=[str(c[0]) for c in ERRNO_CASES])
def test_server_error_numbers(errno: int, text: str, reason: Reason) -> None:
    failure = mysql.classify(server_error(errno, text))
    assert failure is not None
    assert (failure.reason, failure.code) == (reason, OWN_CODES.get(errno, f"mysql:{errno}"))
    assert text in failure.message, "the server's own text is kept for the person reading it"


CAUSE_CASES: list[tuple[BaseException | None, Reason, str]] = [
    (ssl.SSLCertVerificationError(1, "certificate verify failed"), Reason.TLS, "mysql:2003:tls_verify"),
    (ssl.SSLError(1, "wrong version number"), Reason.TLS, "mysql:2003:tls"),
    (socket.gaierror(-2, "Name or service not known"), Reason.DNS, "mysql:2003:dns"),
    (ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 1)"), Reason.NETWORK, "mysql:2003:refused"),
    (TimeoutError(), Reason.TIMEOUT, "mysql:2003:timeout"),
    (OSError(113, "No route to host"), Reason.NETWORK, "mysql:2003:network"),
    (None, Reason.NETWORK, "mysql:2003"),
]


@pytest.mark.parametrize(("cause", "reason", "code"), CAUSE_CASES, ids=[c[2] for c in CAUSE_CASES])
def test_2003_is_split_by_its_cause(cause: BaseException | None, reason: Reason, code: str) -> None:
    failure = mysql.classify(raised_from(OperationalError(2003, CANT_CONNECT), cause))
    assert failure is not None and (failure.reason, failure.code) == (reason, code)
    assert CANT_CONNECT in failure.message
    if cause is not None:
        assert type(cause).__name__ in failure.message, "the cause is what tells the cases apart"


TYPE_CASES: list[tuple[BaseException, Reason, str]] = [
    (InterfaceError("(0, 'Not connected')"), Reason.NETWORK, "mysql:not_connected"),
    (InternalError("Packet sequence number wrong - got 1 expected 0"), Reason.NETWORK, "mysql:protocol"),
    # aiomysql's own complaints carry text where the error number would be
    (OperationalError("Received extra packet for auth method %r", "dialog"), Reason.NETWORK, "mysql:protocol"),
    (socket.gaierror(-2, "Name or service not known"), Reason.DNS, "db:dns"),
    (ConnectionRefusedError(111, "refused"), Reason.NETWORK, "db:refused"),
    (TimeoutError(), Reason.TIMEOUT, "db:timeout"),
    (OSError(101, "Network is unreachable"), Reason.NETWORK, "db:network"),
]


@pytest.mark.parametrize(("exc", "reason", "code"), TYPE_CASES, ids=[c[2] for c in TYPE_CASES])
def test_errors_without_a_number_are_matched_by_class(exc: BaseException, reason: Reason, code: str) -> None:
    failure = mysql.classify(exc)
    assert failure is not None and (failure.reason, failure.code) == (reason, code)


def test_every_table_key_is_exercised() -> None:
    read_only = {1290, 1836}  # db:read_only, exercised in tests/probes/test_db_role_mysql.py
    covered: set[Any] = {c[0] for c in ERRNO_CASES} | {2003} | {type(c[0]) for c in TYPE_CASES} | read_only
    assert covered == set(mysql.TABLE)
    nested = mysql.TABLE[2003]
    assert isinstance(nested, dict)
    assert {type(c) if c is not None else BaseException for c, *_ in CAUSE_CASES} == set(nested)


@pytest.mark.parametrize(
    "text",
    ["IAM authentication rate limit exceeded", "Connections rate limit exceeded (500)"],
)
def test_rds_proxy_rate_limits_under_1040_are_throttled(text: str) -> None:
    """RDS Proxy answers a throttled login with 1040 (RDS User Guide, "Troubleshooting for RDS Proxy")."""
    failure = mysql.classify(server_error(1040, text))
    assert failure is not None and (failure.reason, failure.code) == (Reason.THROTTLED, "mysql:1040:throttled")
    assert text in failure.message


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Too many connections", "mysql:1040"),
        ("Number simultaneous connections exceeded (500)", "db:proxy_connections"),
    ],
)
def test_other_1040_answers_stay_server(text: str, code: str) -> None:
    """The proxy's limit on connections at once is `server` like 1040's, with the proxy's own code (its hint)."""
    failure = mysql.classify(server_error(1040, text))
    assert failure is not None and (failure.reason, failure.code) == (Reason.SERVER, code)


def test_a_rate_limit_message_under_another_number_is_left_to_that_number() -> None:
    failure = mysql.classify(server_error(1045, "Access denied; rate limit exceeded"))
    assert failure is not None and (failure.reason, failure.code) == (Reason.AUTH, "mysql:1045")


def test_throttling_hint_says_the_limit_is_shared() -> None:
    hint = probe(iam=True).hint(Failure(Reason.THROTTLED, "mysql:1040:throttled", "RDS Proxy is throttling"))
    assert "shared by every client" in hint and "backs off" in hint


def test_unknown_error_numbers_keep_a_stable_code() -> None:
    failure = mysql.classify(server_error(1317, "Query execution was interrupted"))
    assert failure is not None and (failure.reason, failure.code) == (Reason.UNKNOWN, "mysql:1317")


def test_errors_outside_the_table_are_left_to_the_edge() -> None:
    assert mysql.classify(ValueError("not a driver error")) is None


SERVER = Server(Engine.MYSQL, "orders.abc.eu-west-1.rds.amazonaws.com", 3306, "root", "", None)


def probe(iam: bool) -> DatabaseProbe:
    extra = {"iam_auth": True, "region": "eu-west-1"} if iam else {"password": SecretStr("pw-1234567")}
    target = target_for(SERVER, "chimera_app", database="orders", sslmode=SslMode.REQUIRE, **extra)
    return DatabaseProbe(target, TargetState(), timeout=2)


def test_iam_auth_hint_gives_the_plugin_statement_and_that_tls_is_required() -> None:
    hint = probe(iam=True).hint(Failure(Reason.AUTH, "mysql:1045", "Access denied"))
    assert "CREATE USER chimera_app IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS'" in hint
    assert "ALTER USER chimera_app IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS'" in hint
    assert "requires TLS" in hint
    assert "arn:aws:rds-db:eu-west-1:<account-id>:dbuser:<DbiResourceId>/chimera_app" in hint


@pytest.mark.parametrize(
    ("code", "reason", "expected"),
    [
        ("mysql:1045", Reason.AUTH, "The password for chimera_app was rejected"),
        ("mysql:1049", Reason.CONFIG, "Database orders does not exist"),
        ("mysql:1044", Reason.AUTH, "may not use database orders"),
        ("mysql:1040", Reason.SERVER, "max_connections"),
        ("mysql:1226", Reason.SERVER, "MAX_USER_CONNECTIONS"),
        ("mysql:2003:dns", Reason.DNS, "resolve only inside their VPC"),
        ("mysql:2003:refused", Reason.NETWORK, "orders.abc.eu-west-1.rds.amazonaws.com:3306"),
    ],
)
def test_hints_fill_in_the_targets_values(code: str, reason: Reason, expected: str) -> None:
    assert expected in probe(iam=False).hint(Failure(reason, code, "detail"))


# Every error number of the table, and each other code the driver gives, has a hint of its own that names the fix.
OWN_HINTS: dict[str, str] = {
    "mysql:1045": "SELECT user, host, plugin FROM mysql.user WHERE user = 'chimera_app';",
    "mysql:1698": "unix_socket or auth_socket",
    "db:password_expired": "PASSWORD EXPIRE NEVER",
    "mysql:1044": "GRANT ... ON `orders`.* TO 'chimera_app'@'%';",
    "mysql:1130": "host part must match",
    "mysql:1049": "CREATE DATABASE `orders`;",
    "mysql:1251": "IDENTIFIED WITH caching_sha2_password",
    "mysql:2059": "client_ed25519",
    "mysql:1040": "max_connections",
    "mysql:1203": "server-wide max_user_connections",
    "mysql:1226": "MAX_USER_CONNECTIONS",
    "mysql:1129": "FLUSH HOSTS",
    "mysql:1053": "shutting down",
    "mysql:3159": "require_secure_transport",
    "mysql:2013": "connect_timeout",
    "mysql:2006": "wait_timeout",
    "mysql:not_connected": "already closed",
    "mysql:protocol": "out of step with the MySQL protocol",
    "mysql:2003:tls_verify": "global-bundle.pem",
    "mysql:sha2:needs_tls": "has no RSA key pair",
    "mysql:sha2:no_rsa": "cryptography",
    "mysql:sha2:bad_key": "caching_sha2_password_public_key_path",
    "mysql:sha2:protocol": "out of step",
}


def test_every_error_number_of_the_table_has_a_hint_of_its_own() -> None:
    own_code = {2003, 1290, 1836}  # 2003: by its cause; 1290, 1836: db:read_only, whose hint is the role's
    numbers = {
        OWN_CODES.get(key, f"mysql:{key}") for key in mysql.TABLE if isinstance(key, int) and key not in own_code
    }
    assert numbers <= set(mysql.HINTS), numbers - set(mysql.HINTS)
    assert set(mysql.HINTS) == set(OWN_HINTS)


@pytest.mark.parametrize(("code", "expected"), OWN_HINTS.items())
def test_each_code_s_hint_names_its_fix(code: str, expected: str) -> None:
    hint = probe(iam=False).hint(Failure(Reason.AUTH, code, "detail"))
    assert hint == probe(iam=False).hint(Failure(Reason.SERVER, code, "detail")), "the code decides, not the reason"
    assert expected in hint
    assert "<" not in hint.replace("<n>", ""), f"an unfilled field in {hint!r}"


@pytest.mark.parametrize("code", ["mysql:1045", "mysql:1698"])
def test_with_iam_an_access_denial_gets_the_iam_checklist(code: str) -> None:
    hint = probe(iam=True).hint(Failure(Reason.AUTH, code, "Access denied"))
    assert "AWSAuthenticationPlugin" in hint and "rds-db:connect" in hint
    assert "host orders.abc.eu-west-1.rds.amazonaws.com, port 3306, user chimera_app, region eu-west-1" in hint
