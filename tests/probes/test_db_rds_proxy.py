"""RDS Proxy's own answers (issue 14, item 6), spoken over the real PostgreSQL protocol by a stand-in that answers
every login with the proxy's ErrorResponse (tests/support/protocol_front.py), and MySQL's by the same front: each
has its reason, code and hint; a proxy endpoint is recognised for its region and for which of two logins failed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pymysql
import pytest
from pydantic import SecretStr

from agent.config.dsn import Engine, SslMode, is_proxy_host, region_from_host
from agent.config.models import TargetConfig
from agent.probes.base import ProbeResult, TargetState
from agent.probes.db import DatabaseProbe
from agent.probes.drivers import mysql
from agent.probes.runner import run_probe
from agent.shared.reasons import Failure, Reason, Scope
from tests.support.aws import make_target
from tests.support.databases import Server, assert_no_secret, random_password, target_for
from tests.support.protocol_front import ProtocolFront, mysql_error, pg_error

TIMEOUT = 3.0
PROXY = "orders.proxy-c9akciq32.eu-west-1.rds.amazonaws.com"
PROXY_RO = "orders-ro.endpoint.proxy-c9akciq32.eu-west-1.rds.amazonaws.com"

# The texts as the RDS User Guide lists them ("Troubleshooting for RDS Proxy", PostgreSQL), names filled in.
PG_ANSWERS = [
    ("This RDS Proxy requires TLS connections", Reason.TLS, "db:proxy_requires_tls", "sslmode=require"),
    ("IAM authentication is allowed only with SSL connections.", Reason.TLS, "db:proxy_requires_tls", "TLS"),
    ("IAM is allowed only with SSL connections.", Reason.TLS, "db:proxy_requires_tls", "TLS"),
    (
        "IAM authentication failed for user app. Check the IAM token for this user and try again.",
        Reason.AUTH,
        "db:proxy_iam_auth",
        "dbuser:<prx-id>/app",
    ),
    (
        "The IAM authentication failed for the role app. Check the IAM token for this role and try again.",
        Reason.AUTH,
        "db:proxy_iam_auth",
        "IAMAuth REQUIRED",
    ),
    (
        "This RDS proxy has no credentials for the role app. Check the credentials for this role and try again.",
        Reason.AUTH,
        "db:proxy_no_credentials",
        "secretsmanager:GetSecretValue",
    ),
    ("The password that was provided for the role app is wrong.", Reason.AUTH, "db:proxy_password", "same secret"),
    (
        "The maximum number of client connections to the proxy exceeded 1000.",
        Reason.SERVER,
        "db:proxy_connections",
        "ClientConnections",
    ),
    ("Timed-out waiting to acquire database connection.", Reason.SERVER, "db:proxy_borrow_timeout", "max_connections"),
]


@pytest.fixture
async def proxy() -> AsyncIterator[ProtocolFront]:
    """The stand-in: nothing behind it (port 9, discard), every connection answered by the proxy's error."""
    front = await ProtocolFront("127.0.0.1", 9).start()
    try:
        yield front
    finally:
        await front.close()


def standin_target(front: ProtocolFront, engine: Engine, **overrides: object) -> TargetConfig:
    server = Server(engine, "127.0.0.1", front.port, "", "", None)
    return target_for(server, "app", database="orders", sslmode=SslMode.PREFER, **overrides)


async def login(target: TargetConfig, state: TargetState) -> ProbeResult:
    return await run_probe(DatabaseProbe(target, state, timeout=TIMEOUT), TIMEOUT)


@pytest.mark.parametrize(
    ("text", "reason", "code", "words"), PG_ANSWERS, ids=[c[2] + ":" + c[0][:24] for c in PG_ANSWERS]
)
@pytest.mark.parametrize("sqlstate", ["28000", "08004"])
async def test_postgres_proxy_answers_have_their_own_reason_code_and_hint(
    proxy: ProtocolFront, sqlstate: str, text: str, reason: Reason, code: str, words: str
) -> None:
    """Whatever SQLSTATE the proxy sends (the guide gives none), its words decide."""
    password = random_password()
    proxy.refuse(pg_error(sqlstate, text))
    result = await login(standin_target(proxy, Engine.POSTGRESQL, password=SecretStr(password)), TargetState())
    assert (result.reason, result.code) == (reason, code), result.message
    assert text in result.message and words in result.hint, result.hint
    assert proxy.answered >= 2  # the TCP reachability check, then the login
    assert_no_secret(result, password)


async def test_an_iam_token_rejected_by_the_proxy_is_auth_with_the_proxy_checklist(proxy: ProtocolFront) -> None:
    """An IAM target: the token (the password) never shows; the hint is the proxy's, not rds_iam's."""
    token = "orders.proxy:5432/?Action=connect&DBUser=app&X-Amz-Signature=" + random_password()
    proxy.refuse(pg_error("28000", "IAM authentication failed for user app. Check the IAM token for this user."))
    target = standin_target(proxy, Engine.POSTGRESQL, iam_auth=True, region="eu-west-1")
    result = await login(target, TargetState(token=SecretStr(token), token_generated_at=0.0))
    assert (result.reason, result.code, result.scope) == (Reason.AUTH, "db:proxy_iam_auth", Scope.TASK)
    assert "rds_iam" not in result.hint and "the proxy's resource id" in result.hint
    assert_no_secret(result, token)


@pytest.mark.parametrize(
    ("errno", "text", "reason", "code"),
    [
        (1040, "Number simultaneous connections exceeded (1000)", Reason.SERVER, "db:proxy_connections"),
        (3159, "This RDS Proxy requires TLS connections.", Reason.TLS, "db:proxy_requires_tls"),
        (9501, "Timed-out waiting to acquire database connection", Reason.SERVER, "db:proxy_borrow_timeout"),
        (1040, "IAM authentication rate limit exceeded", Reason.THROTTLED, "mysql:1040:throttled"),
    ],
)
async def test_mysql_proxy_answers_over_the_wire(
    proxy: ProtocolFront, errno: int, text: str, reason: Reason, code: str
) -> None:
    """The ERR packet after the handshake, as the guide lists them."""
    proxy.refuse(mysql_error(errno, text))
    result = await login(standin_target(proxy, Engine.MYSQL, password=SecretStr(random_password())), TargetState())
    assert (result.reason, result.code) == (reason, code), result.message
    assert result.hint


def test_mysql_3159_without_the_proxys_words_stays_mysqls_own() -> None:
    """require_secure_transport's 3159 keeps its code: only the proxy's text makes it a proxy answer."""
    error = pymysql.err.OperationalError(3159, "Connections using insecure transport are prohibited")
    failure = mysql.classify(error)
    assert failure is not None and failure.code == "mysql:3159"


@pytest.mark.parametrize("host", [PROXY, PROXY_RO, PROXY.upper()])
def test_proxy_endpoints_are_recognised_with_their_region(host: str) -> None:
    assert is_proxy_host(host) and region_from_host(host) == "eu-west-1"


@pytest.mark.parametrize(
    "host", ["orders.c9akciq32.eu-west-1.rds.amazonaws.com", "proxy-1.example.com", "a.proxy-x.example.com"]
)
def test_other_hosts_are_not_proxies(host: str) -> None:
    assert not is_proxy_host(host)


@pytest.mark.parametrize("engine", [Engine.POSTGRESQL, Engine.MYSQL])
def test_a_generic_rejection_at_a_proxy_says_which_login_the_proxy_checks(engine: Engine) -> None:
    """MySQL through a proxy answers 1045 like the database would: the hint says the proxy compared its secret."""
    code = "mysql:1045" if engine is Engine.MYSQL else "pg:28P01"
    rejected = Failure(Reason.AUTH, code, "login rejected")
    password = DatabaseProbe(make_target(host=PROXY, engine=engine), TargetState(), timeout=2.0).hint(rejected)
    assert password.startswith(f"{PROXY} is an RDS Proxy: it compares the password with its own Secrets Manager")
    iam = DatabaseProbe(make_target(host=PROXY, engine=engine, iam_auth=True), TargetState(), timeout=2.0)
    assert "needs no IAM plugin or rds_iam" in iam.hint(rejected)
    direct = DatabaseProbe(make_target(engine=engine), TargetState(), timeout=2.0).hint(rejected)
    assert "RDS Proxy" not in direct
