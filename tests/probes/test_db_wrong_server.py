"""A DSN whose port is another kind of server's (issue 13, section 2): every pairing of engine and server is
reported as `config`, code db:wrong_server, naming what answered; real PostgreSQL and MariaDB, real loopback
stand-ins for the rest."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from agent.config.dsn import Engine, SslMode
from agent.config.models import TargetConfig
from agent.probes.base import ProbeResult, TargetState
from agent.probes.db import DatabaseProbe
from agent.probes.drivers.wire import Speaker, identify, recognise
from agent.probes.runner import run_probe
from agent.sandbox.postgres import PostgresSandbox
from agent.shared.reasons import Reason, Scope
from tests.support.databases import Server, target_for
from tests.support.foreign_servers import http_server, speaking_server

TIMEOUT = 3.0
SSLMODES = [SslMode.DISABLE, SslMode.PREFER, SslMode.REQUIRE]
NAMES = {Engine.POSTGRESQL: "PostgreSQL", Engine.MYSQL: "MySQL"}


def aimed(engine: Engine, port: int, sslmode: SslMode = SslMode.DISABLE) -> TargetConfig:
    """A target of `engine` whose DSN points at 127.0.0.1:port, with a password."""
    server = Server(engine, "127.0.0.1", port, "admin", "", "postgres" if engine is Engine.POSTGRESQL else None)
    return target_for(server, "app", password=SecretStr("not-the-password-1"), sslmode=sslmode)


async def check(target: TargetConfig) -> ProbeResult:
    return await run_probe(DatabaseProbe(target, TargetState(), timeout=TIMEOUT), TIMEOUT)


def assert_wrong_server(result: ProbeResult, engine: Engine, port: int, answered: str) -> None:
    expected = (False, Reason.CONFIG, "db:wrong_server", Scope.TASK)
    assert (result.ok, result.reason, result.code, result.scope) == expected
    said = f"the server at 127.0.0.1:{port} does not speak {NAMES[engine]} ({answered}"
    assert said in result.message, result.message
    assert f"The DSN says {engine.value}, but 127.0.0.1:{port} is not a {engine.value} server" in result.hint
    assert "postgresql:// or mysql://" in result.hint and "sslmode" not in result.hint


@pytest.mark.parametrize("sslmode", SSLMODES)
async def test_a_postgresql_dsn_at_a_mysql_server(mysql_server: Server, sslmode: SslMode) -> None:
    """The issue's case: postgresql://u@127.0.0.1:3306/db, MariaDB listening; not a TLS failure."""
    result = await check(aimed(Engine.POSTGRESQL, mysql_server.port, sslmode))
    assert_wrong_server(result, Engine.POSTGRESQL, mysql_server.port, "it answered like a MySQL server")
    assert "MariaDB" in result.message, "the greeting's version says which server it is"


@pytest.mark.parametrize("sslmode", SSLMODES)
async def test_a_mysql_dsn_at_a_postgresql_server(pg_server: Server, sslmode: SslMode) -> None:
    """A MySQL client waits for a greeting PostgreSQL never sends: within seconds, not at the timeout."""
    result = await check(aimed(Engine.MYSQL, pg_server.port, sslmode))
    assert_wrong_server(result, Engine.MYSQL, pg_server.port, "it answered like a PostgreSQL server")
    assert result.duration_ms < 2_500


async def test_a_mysql_dsn_at_a_postgresql_server_with_tls(pg_tls_cluster: PostgresSandbox) -> None:
    """A PostgreSQL server with TLS answers the SSLRequest with S, not N: the same verdict."""
    result = await check(aimed(Engine.MYSQL, pg_tls_cluster.port, SslMode.REQUIRE))
    assert_wrong_server(result, Engine.MYSQL, pg_tls_cluster.port, "it answered like a PostgreSQL server")


@pytest.mark.parametrize("engine", [Engine.POSTGRESQL, Engine.MYSQL])
@pytest.mark.parametrize("sslmode", SSLMODES)
async def test_either_engine_at_an_http_server(engine: Engine, sslmode: SslMode) -> None:
    async with http_server() as port:
        result = await check(aimed(engine, port, sslmode))
    assert_wrong_server(result, engine, port, "it answered like an HTTP server: HTTP/1.")


@pytest.mark.parametrize("engine", [Engine.POSTGRESQL, Engine.MYSQL])
@pytest.mark.parametrize("sslmode", SSLMODES)
async def test_either_engine_at_a_server_that_sends_garbage(engine: Engine, sslmode: SslMode) -> None:
    """A stream no database sends, held open: asyncpg would wait for the rest of a message until the timeout."""
    async with speaking_server() as port:
        result = await check(aimed(engine, port, sslmode))
    answered = "it sent bytes that are neither a MySQL greeting nor a PostgreSQL reply: b'\\x00\\x01garbage-here"
    assert_wrong_server(result, engine, port, answered)
    assert result.duration_ms < 1_000


@pytest.mark.parametrize("engine", [Engine.POSTGRESQL, Engine.MYSQL])
async def test_either_engine_at_a_silent_server_is_a_timeout_not_a_verdict(engine: Engine, silent_port: int) -> None:
    """Nothing answers at all: a hung server of the right kind looks the same, so no claim about what it is."""
    result = await check(aimed(engine, silent_port))
    assert (result.reason, result.code) == (Reason.TIMEOUT, "db:timeout")
    assert "accepted the TCP connection but did not answer" in result.hint
    assert f"really is a {engine.value} server" in result.hint


async def test_the_right_server_keeps_its_own_answers(pg_server: Server, mysql_server: Server) -> None:
    """A wrong password at the right server is still auth, and PostgreSQL without TLS under sslmode=require is
    still tls (its N reply is PostgreSQL's): a look at what answers never changes those."""
    pg = await check(aimed(Engine.POSTGRESQL, pg_server.port).model_copy(update={"user": "eha_nobody"}))
    assert (pg.reason, pg.code) == (Reason.AUTH, "pg:28P01")
    my = await check(aimed(Engine.MYSQL, mysql_server.port).model_copy(update={"user": "eha_nobody"}))
    # MariaDB answers an unknown user 1045, or 1698 when its anonymous-user / plugin handling switches the
    # authentication first (docs/faults.md: "MariaDB may say mysql:1698"); both are its own auth answers.
    assert my.reason is Reason.AUTH and my.code in {"mysql:1045", "mysql:1698"}, my.code
    tls = await check(aimed(Engine.POSTGRESQL, pg_server.port, SslMode.REQUIRE))
    assert (tls.reason, tls.code) == (Reason.TLS, "db:tls_not_negotiated")


async def test_identify_names_real_servers(pg_server: Server, mysql_server: Server, closed_port: int) -> None:
    maria = await identify(mysql_server.host, mysql_server.port)
    assert maria.speaker is Speaker.MYSQL and maria.sample[:1].isdigit()
    assert (await identify(pg_server.host, pg_server.port)).speaker is Speaker.POSTGRESQL
    assert (await identify("127.0.0.1", closed_port)).speaker is Speaker.CLOSED


@pytest.mark.parametrize(
    ("data", "after_ssl_request", "speaker"),
    [
        (b"S", True, Speaker.POSTGRESQL),
        (b"N", True, Speaker.POSTGRESQL),
        (b"N", False, Speaker.OTHER),  # unasked, a lone N is nobody's greeting
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", True, Speaker.HTTP),
        (b"\x15\x03\x03\x00\x02\x02\x46", True, Speaker.TLS),  # a TLS alert record
        # a MySQL ERR packet instead of a greeting: 1129, "Host ... is blocked" (max_connect_errors)
        (b"\x17\x00\x00\x00\xff\x69\x04Host '10.0.0.1' is blocked", False, Speaker.MYSQL),
        (b"SSH-2.0-OpenSSH_9.2\r\n", False, Speaker.OTHER),
    ],
)
def test_recognise_first_bytes(data: bytes, after_ssl_request: bool, speaker: Speaker) -> None:
    assert recognise(data, after_ssl_request=after_ssl_request).speaker is speaker
