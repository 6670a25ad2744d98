"""AppProbe against a real backend stand-in on a loopback port: each way a backend fails gives its reason, code,
step and a hint in the user's own values; every failure is `task` scope; no query string is ever shown."""

from __future__ import annotations

import asyncio
import errno
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey
from multidict import CIMultiDict, CIMultiDictProxy
from pydantic import SecretStr
from yarl import URL

from agent.config.backend import parse_statuses
from agent.config.models import AppConfig
from agent.probes.app import AppProbe
from agent.probes.base import ProbeResult
from agent.probes.runner import run_probe
from agent.shared.reasons import Failure, Reason, Scope
from tests.support.backend import Backend, Mode, backend

TIMEOUT = 0.5
KEY = "k3y-in-the-query-string"


def app(port: int, path: str = "/health", expect: str = "200-399", scheme: str = "http", query: str = "") -> AppConfig:
    http = scheme != "tcp"
    return AppConfig(
        scheme=scheme,  # type: ignore[arg-type]
        host="127.0.0.1",
        port=port,
        path=path if http else "",
        query=SecretStr(query) if query else None,
        expect_status=parse_statuses(expect),
        url=f"{scheme}://127.0.0.1:{port}{path if http else ''}",
    )


@asynccontextmanager
async def probed(config: AppConfig, timeout: float = TIMEOUT) -> AsyncIterator[tuple[AppProbe, ProbeResult]]:
    """One run through the runner (the edge that applies the timeout, classifies and hints); closed after."""
    probe = AppProbe(config, timeout=timeout)
    try:
        yield probe, await run_probe(probe, timeout)
    finally:
        await probe.close()


@pytest.fixture
def stand_in() -> Iterator[Backend]:
    with backend() as running:
        yield running


def fields(result: ProbeResult) -> tuple[bool, Reason | None, str, Scope | None]:
    return result.ok, result.reason, result.code, result.scope


async def test_200_passes_with_status_url_and_duration_and_sends_the_query(stand_in: Backend) -> None:
    """A passing GET reports status, the URL without its query, and its duration; the query is still sent."""
    async with probed(app(stand_in.port, query=f"key={KEY}")) as (_, result):
        assert fields(result) == (True, None, "ok", None)
        assert result.details["status"] == "200"
        assert result.details["url"] == f"http://{stand_in.address}/health"
        assert float(result.details["duration_ms"]) >= 0
    assert stand_in.requests == [f"GET /health?key={KEY} HTTP/1.1"]


async def test_one_session_serves_every_run_with_a_new_connection_each(stand_in: Backend) -> None:
    """The probe keeps its HTTP session between runs but opens a connection per run, like the ALB's checks."""
    probe = AppProbe(app(stand_in.port), timeout=TIMEOUT)
    try:
        results = [await run_probe(probe, TIMEOUT) for _ in range(3)]
        session = probe._session
        assert all(r.ok for r in results) and session is not None and not session.closed
    finally:
        await probe.close()
    assert session.closed and stand_in.connections == 3


async def test_nothing_listening_is_refused_with_the_port_in_the_hint(stand_in: Backend) -> None:
    stand_in.set(Mode.DOWN)
    async with probed(app(stand_in.port)) as (_, result):
        assert fields(result) == (False, Reason.NETWORK, "app:refused", Scope.TASK)
        assert f"during connecting to {stand_in.address}" in result.message
        assert result.hint == (
            f"nothing listens on {stand_in.address}: is the backend container up, and is this its port?"
        )


async def test_500_is_server_with_the_shallow_endpoint_hint(stand_in: Backend) -> None:
    """A 500 names the status and request, and the hint steers away from a health check that checks the database."""
    stand_in.set(Mode.ANSWER, 500)
    async with probed(app(stand_in.port)) as (_, result):
        assert fields(result) == (False, Reason.SERVER, "app:http_500", Scope.TASK)
        assert "answered 500 to GET /health, expected 200-399" in result.message
        assert result.hint.startswith("the backend answered 500 to GET /health: point AGENT_APP_URL at its shallow")
        assert "turns a database outage into 503 on every task" in result.hint


@pytest.mark.parametrize(
    ("status", "expect", "code", "hint"),
    [
        (404, "200-399", "app:http_404", "is /health its liveness endpoint?"),
        (401, "200-399", "app:http_401", "expected 200-399: use an endpoint that answers without credentials"),
        (301, "200", "app:http_301", "answered 301 to GET /health, expected 200 (AGENT_APP_EXPECT_STATUS)"),
    ],
)
async def test_statuses_outside_the_expected_ones_fail(
    stand_in: Backend, status: int, expect: str, code: str, hint: str
) -> None:
    """404, 401, and a redirect when only 200 is expected (redirects are never followed)."""
    stand_in.set(Mode.ANSWER, status)
    async with probed(app(stand_in.port, expect=expect)) as (_, result):
        assert fields(result) == (False, Reason.SERVER, code, Scope.TASK)
        assert hint in result.hint
    assert len(stand_in.requests) == 1


@pytest.mark.parametrize(("status", "expect"), [(204, "200,204"), (301, "200-399"), (404, "200-299,404")])
async def test_expected_statuses_pass(stand_in: Backend, status: int, expect: str) -> None:
    stand_in.set(Mode.ANSWER, status)
    async with probed(app(stand_in.port, expect=expect)) as (_, result):
        assert result.ok and result.details["status"] == str(status)


async def test_hung_backend_times_out_waiting_for_the_answer(stand_in: Backend) -> None:
    """Accepted but never answered: timeout, named step, and the deadlock / worker pool hint with the timeout."""
    stand_in.set(Mode.HANG)
    async with probed(app(stand_in.port)) as (_, result):
        assert fields(result) == (False, Reason.TIMEOUT, "app:timeout", Scope.TASK)
        assert result.message == f"no answer within {TIMEOUT:g}s during waiting for the answer to GET /health"
        assert result.hint == (
            "the backend accepted the connection but did not answer GET /health within 0.5s: is it hung (a"
            " deadlock, an exhausted worker pool)?"
        )
        assert result.duration_ms < (TIMEOUT + 0.5) * 1000


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A port whose accept queue is full (nothing accepts): a new connection is never completed."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    for _ in range(8):  # enough to fill a backlog of 0 (Linux queues backlog + 1)
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(listener.getsockname())
        fillers.append(filler)
    try:
        yield int(listener.getsockname()[1])
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


@pytest.mark.parametrize("scheme", ["http", "tcp"])
async def test_connect_that_never_completes_times_out_connecting(full_backlog: int, scheme: str) -> None:
    """A full accept queue (a hung backend) times out in the connect step, with its own hint."""
    async with probed(app(full_backlog, scheme=scheme)) as (_, result):
        assert fields(result) == (False, Reason.TIMEOUT, "app:timeout", Scope.TASK)
        assert result.message.endswith(f"during connecting to 127.0.0.1:{full_backlog}")
        assert result.hint.startswith(f"127.0.0.1:{full_backlog} did not accept the connection within 0.5s")


async def test_reset_without_an_answer_is_network_reset(stand_in: Backend) -> None:
    stand_in.set(Mode.RESET)
    async with probed(app(stand_in.port)) as (_, result):
        assert fields(result) == (False, Reason.NETWORK, "app:reset", Scope.TASK)
        assert f"the backend at {stand_in.address} closed the connection without answering GET /health" in (result.hint)


async def test_an_answer_that_is_not_http_is_a_bad_response(stand_in: Backend) -> None:
    stand_in.set(Mode.GARBAGE)
    async with probed(app(stand_in.port)) as (_, result):
        assert fields(result) == (False, Reason.SERVER, "app:bad_response", Scope.TASK)
        assert f"is {stand_in.address} the backend's HTTP port?" in result.hint


async def test_tcp_mode_connects_without_sending_a_request(stand_in: Backend) -> None:
    async with probed(app(stand_in.port, scheme="tcp")) as (_, result):
        assert result.ok and result.details["url"] == f"tcp://{stand_in.address}" and "status" not in result.details
    for _ in range(200):  # the stand-in's thread may see the connection a moment after the probe closed it
        if stand_in.connections:
            break
        await asyncio.sleep(0.01)
    assert stand_in.connections == 1 and stand_in.requests == []
    stand_in.set(Mode.DOWN)
    async with probed(app(stand_in.port, scheme="tcp")) as (_, result):
        assert fields(result) == (False, Reason.NETWORK, "app:refused", Scope.TASK)
        assert f"nothing listens on {stand_in.address}" in result.hint


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    """A server context with a self-signed certificate for 127.0.0.1, which no system CA trusts."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the TLS test needs the openssl command line tool (apt-get install openssl)")
    root = tmp_path_factory.mktemp("tls")
    key, cert = root / "key.pem", root / "cert.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(Path(cert), Path(key))
    return context


async def test_https_with_an_untrusted_certificate_is_tls(self_signed: ssl.SSLContext) -> None:
    with backend(tls=self_signed) as running:
        async with probed(app(running.port, scheme="https")) as (_, result):
            assert fields(result) == (False, Reason.TLS, "app:tls_verify", Scope.TASK)
            assert "certificate" in result.message and "trusted by the system CAs" in result.hint
        assert running.requests == []  # nothing was sent over a connection that could not be verified


async def test_the_query_string_never_shows(stand_in: Backend) -> None:
    """Not in the details, the message, the hint, nor the config's repr: it may carry a key."""
    stand_in.set(Mode.ANSWER, 500)
    config = app(stand_in.port, query=f"token={KEY}&x=1")
    async with probed(config) as (probe, failed):
        assert failed.code == "app:http_500"
        response_error = aiohttp.ClientResponseError(
            aiohttp.RequestInfo(URL(config.request_url), "GET", CIMultiDictProxy(CIMultiDict())),
            (),
            status=400,
            message="bad status line",
        )
        classified = probe.classify(response_error)
    stand_in.set(Mode.ANSWER, 200)
    async with probed(config) as (_, passed):
        assert passed.ok
    assert classified is not None and KEY in str(response_error)
    for text in (failed.message, failed.hint, repr(config), str(passed.details), classified.message):
        assert KEY not in text, text


def key() -> ConnectionKey:
    return ConnectionKey("backend.internal", 8000, False, True, None, None, None)


@pytest.mark.parametrize(
    ("exc", "reason", "code"),
    [
        (aiohttp.ClientConnectorDNSError(key(), socket.gaierror(-2, "Name or service not known")), "dns", "app:dns"),
        (aiohttp.ClientConnectorError(key(), ConnectionRefusedError(111, "refused")), "network", "app:refused"),
        (aiohttp.ClientConnectorError(key(), ConnectionResetError(104, "reset")), "network", "app:reset"),
        (aiohttp.ClientOSError(errno.ECONNRESET, "Connection reset by peer"), "network", "app:reset"),
        (aiohttp.ClientConnectionResetError("Cannot write to closing transport"), "network", "app:reset"),
        (aiohttp.ServerDisconnectedError(), "network", "app:reset"),
        (aiohttp.ClientOSError(errno.EHOSTUNREACH, "No route to host"), "network", "app:network"),
        (aiohttp.ConnectionTimeoutError("Connection timeout to host"), "timeout", "app:timeout"),
        (aiohttp.SocketTimeoutError("Timeout on reading data from socket"), "timeout", "app:timeout"),
        (
            aiohttp.ClientConnectorCertificateError(key(), ssl.SSLCertVerificationError(1, "self-signed")),
            "tls",
            "app:tls_verify",
        ),
        (aiohttp.ClientConnectorSSLError(key(), ssl.SSLError(1, "wrong version number")), "tls", "app:tls"),
        (socket.gaierror(-2, "Name or service not known"), "dns", "app:dns"),
    ],
)
def test_table(exc: BaseException, reason: str, code: str) -> None:
    """The one table maps aiohttp's errors, and the OS errors they wrap, to reasons and codes."""
    failure = AppProbe(app(8000), timeout=TIMEOUT).classify(exc)
    assert failure is not None and (failure.reason.value, failure.code) == (reason, code)


def test_table_leaves_unknown_exceptions_to_the_edge() -> None:
    assert AppProbe(app(8000), timeout=TIMEOUT).classify(ValueError("a bug")) is None


@pytest.mark.parametrize(
    ("step", "hint"),
    [
        ("resolving backend.internal", "does not resolve: the containers of an awsvpc task share localhost"),
        ("connecting to 127.0.0.1:8000", "127.0.0.1:8000 did not accept the connection within 0.5s"),
        ("waiting for the answer to GET /health", "did not answer GET /health within 0.5s"),
    ],
)
def test_a_timeout_hint_follows_the_step(step: str, hint: str) -> None:
    probe = AppProbe(app(8000), timeout=TIMEOUT)
    probe._step = step
    assert hint in probe.hint(Failure(Reason.TIMEOUT, "app:timeout", "no answer"))
