"""The backend probe: does the backend this agent fronts answer? An HTTP(S) GET that expects certain statuses
(AGENT_APP_EXPECT_STATUS), or with a tcp:// URL a TCP connect only.

Every failure is this task's (`task` scope): a backend that does not answer is fixed by replacing the task, not by
waiting for a shared dependency. Point it at the backend's shallow liveness endpoint, never one that checks the
database: the agent checks the database itself, with the reasons and scopes that keep a fleet in service through
a shared outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import ClassVar

import aiohttp

from agent import __version__
from agent.config.models import APP_TARGET, AppConfig
from agent.probes.base import Details
from agent.shared.hints import pick, render
from agent.shared.reasons import Failure, Reason, Scope, describe

# aiohttp's own timer fires this long after the runner's, which names the step the run was in.
BACKSTOP_SECONDS = 1.0
USER_AGENT = f"ecs-health-agent/{__version__}"  # so the backend's access log can tell these requests apart


class UnexpectedStatus(Exception):
    """The backend answered with a status outside the expected ones."""

    def __init__(self, status: int, request: str, expected: str) -> None:
        super().__init__(f"answered {status} to {request}, expected {expected}")
        self.status = status


@dataclass(frozen=True, slots=True)
class Rule:
    """How one kind of error is reported; `{status}` in a code is the HTTP status."""

    reason: Reason
    code: str
    label: str


# Keys are exception classes, matched along the MRO of the OS error that aiohttp wraps first (refused, reset,
# DNS, TLS), then of the exception itself; the first match wins, so specific classes come before their bases.
TABLE: Mapping[type[BaseException], Rule] = {
    UnexpectedStatus: Rule(Reason.SERVER, "app:http_{status}", "unexpected status"),
    ssl.SSLCertVerificationError: Rule(Reason.TLS, "app:tls_verify", "the backend's certificate is not trusted"),
    ssl.SSLError: Rule(Reason.TLS, "app:tls", "TLS handshake failed"),
    socket.gaierror: Rule(Reason.DNS, "app:dns", "host name does not resolve"),
    ConnectionRefusedError: Rule(Reason.NETWORK, "app:refused", "connection refused"),
    ConnectionResetError: Rule(Reason.NETWORK, "app:reset", "connection reset"),
    ConnectionAbortedError: Rule(Reason.NETWORK, "app:reset", "connection aborted"),
    BrokenPipeError: Rule(Reason.NETWORK, "app:reset", "connection closed while sending"),
    aiohttp.ClientConnectionResetError: Rule(Reason.NETWORK, "app:reset", "connection reset"),
    aiohttp.ServerDisconnectedError: Rule(Reason.NETWORK, "app:reset", "connection closed without an answer"),
    aiohttp.ServerTimeoutError: Rule(Reason.TIMEOUT, "app:timeout", "no answer in time"),
    TimeoutError: Rule(Reason.TIMEOUT, "app:timeout", "no answer in time"),
    aiohttp.ClientResponseError: Rule(Reason.SERVER, "app:bad_response", "the answer is not valid HTTP"),
    aiohttp.ClientConnectionError: Rule(Reason.NETWORK, "app:network", "connection failed"),
    OSError: Rule(Reason.NETWORK, "app:network", "network error"),
}

_SHALLOW = (
    "point AGENT_APP_URL at its shallow liveness endpoint, not one that checks the database (the agent checks the"
    " database; a health endpoint that checks it too turns a database outage into 503 on every task)"
)
# Keys: a code, a derived key (app:http_5xx, app:timeout:connect, ...), then a reason (agent.shared.hints.pick).
HINTS: Mapping[str, str] = {
    "app:refused": "nothing listens on {address}: is the backend container up, and is this its port?",
    "app:reset": (
        "the backend at {address} closed the connection without answering {request}: is it crashing or"
        " restarting (see its logs), or does {address} speak another protocol (https:// vs http://)?"
    ),
    "app:timeout:connect": (
        "{address} did not accept the connection within {timeout}: its accept queue is full (a hung backend) or"
        " something drops the packets: is this the backend's address?"
    ),
    "app:timeout:answer": (
        "the backend accepted the connection but did not answer {request} within {timeout}: is it hung (a"
        " deadlock, an exhausted worker pool)?"
    ),
    "app:http_5xx": "the backend answered {status} to {request}: " + _SHALLOW,
    "app:http_404": (
        "the backend answered 404 to {request}: is {path} its liveness endpoint? Fix the path in AGENT_APP_URL"
    ),
    "app:http_4xx": (
        "the backend answered {status} to {request}, expected {expected}: use an endpoint that answers without"
        " credentials, or set AGENT_APP_EXPECT_STATUS"
    ),
    "server": "the backend answered {status} to {request}, expected {expected} (AGENT_APP_EXPECT_STATUS)",
    "app:bad_response": "the answer to {request} is not HTTP: is {address} the backend's HTTP port?",
    "dns": (
        "{host} does not resolve: the containers of an awsvpc task share localhost, so a sidecar reaches the"
        " backend at 127.0.0.1:<its port>"
    ),
    "tls": (
        "TLS with {address} failed: the containers of a task share localhost, so http:// is usual there; with"
        " https:// the backend's certificate must be valid for {host} and trusted by the system CAs"
    ),
    "network": "the connection to {address} failed: is the backend container up, and is this its port?",
}


class AppProbe:
    """Asks the backend once per run: GET its URL (the status decides) or, for tcp://, connect and close."""

    name: ClassVar[str] = "app"
    failure_scope: ClassVar[Scope | None] = Scope.TASK  # a backend that does not answer is this task's failure
    target = APP_TARGET

    def __init__(self, config: AppConfig, timeout: float) -> None:
        self.config = config
        self.timeout = timeout
        self._step = "not started"
        self._session: aiohttp.ClientSession | None = None
        self._request = f"GET {config.path}" if config.scheme != "tcp" else f"a TCP connect to {config.address}"

    @property
    def step(self) -> str:
        """What the probe is doing right now."""
        return self._step

    async def run(self) -> Details:
        """One GET (or TCP connect); raise on no answer or an unexpected status."""
        started = time.monotonic()
        details = {"url": self.config.url}
        if self.config.scheme == "tcp":
            await self._connect()
        else:
            details["status"] = str(await self._get())
        details["duration_ms"] = f"{(time.monotonic() - started) * 1000:.1f}"
        return details

    async def close(self) -> None:
        """Close the HTTP session (on shutdown, or after `check`)."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def classify(self, exc: BaseException) -> Failure | None:
        """The Failure for an aiohttp, socket or TLS error, or an unexpected status, from TABLE."""
        for cls in (c for candidate in _candidates(exc) for c in candidate.__mro__):
            rule = TABLE.get(cls)
            if rule is not None:
                code = rule.code.format(status=getattr(exc, "status", ""))
                return Failure(rule.reason, code, f"{rule.label} (during {self._step}): {self._scrub(describe(exc))}")
        return None

    def hint(self, failure: Failure) -> str:
        """The next step, with the user's own URL, address and timeout filled in."""
        status = failure.code.removeprefix("app:http_") if failure.code.startswith("app:http_") else ""
        facts = {
            "url": self.config.url,
            "address": self.config.address,
            "host": self.config.host,
            "path": self.config.path,
            "request": self._request,
            "timeout": f"{self.timeout:g}s",
            "expected": self.config.expected,
            "status": status or "<status>",
        }
        return render(pick(HINTS, self._hint_key(failure.code, status), failure.reason.value), facts)

    def _hint_key(self, code: str, status: str) -> str:
        if code == "app:timeout":  # where it stopped decides: the DNS lookup, the connect, or the answer
            if self._step.startswith("resolving"):
                return "dns"
            return "app:timeout:answer" if self._step.startswith("waiting") else "app:timeout:connect"
        if status and code not in HINTS:
            return f"app:http_{status[:1]}xx"  # app:http_503 -> app:http_5xx
        return code

    # -- one run ------------------------------------------------------------------------------------------

    async def _get(self) -> int:
        self._step = f"connecting to {self.config.address}"
        session = self._session or self._open_session()
        async with session.get(self.config.request_url, allow_redirects=False) as response:
            status = response.status  # the body is never read: release() drops it with the connection
        self._step = f"reading the answer to {self._request}"
        if not self.config.expects(status):
            raise UnexpectedStatus(status, self._request, self.config.expected)
        return status

    async def _connect(self) -> None:
        self._step = f"connecting to {self.config.address}"
        _, writer = await asyncio.open_connection(self.config.host, self.config.port)
        self._step = f"closing the connection to {self.config.address}"
        writer.close()
        with contextlib.suppress(OSError):  # it connected: that was the check
            await writer.wait_closed()

    def _open_session(self) -> aiohttp.ClientSession:
        trace = aiohttp.TraceConfig()
        trace.on_dns_resolvehost_start.append(self._resolving)
        trace.on_dns_resolvehost_end.append(self._connecting)
        trace.on_connection_create_end.append(self._waiting)
        self._session = aiohttp.ClientSession(
            # A new connection per run, like the ALB's checks: a kept-alive one would hide a backend that no
            # longer accepts, and one the backend closes while idle would read as a reset.
            connector=aiohttp.TCPConnector(force_close=True),
            timeout=aiohttp.ClientTimeout(total=self.timeout + BACKSTOP_SECONDS),
            headers={"User-Agent": USER_AGENT},
            trace_configs=[trace],
            trust_env=False,  # an HTTP(S)_PROXY meant for egress must not sit between two containers of a task
        )
        return self._session

    async def _resolving(self, *_: object) -> None:
        self._step = f"resolving {self.config.host}"

    async def _connecting(self, *_: object) -> None:
        self._step = f"connecting to {self.config.address}"

    async def _waiting(self, *_: object) -> None:
        self._step = f"waiting for the answer to {self._request}"

    def _scrub(self, text: str) -> str:
        """Exception texts may carry the requested URL (aiohttp's response errors do): never its query string."""
        query = self.config.query.get_secret_value() if self.config.query is not None else ""
        if not query:
            return text
        return text.replace(self.config.request_url, self.config.url).replace(query, "[REDACTED]")


def _candidates(exc: BaseException) -> Iterator[type[BaseException]]:
    """The classes to look up: the OS error aiohttp wraps, the stdlib class of an errno, then the exception."""
    wrapped = getattr(exc, "os_error", None) if isinstance(exc, aiohttp.ClientConnectorError) else None
    if isinstance(wrapped, BaseException):
        yield type(wrapped)
    if isinstance(exc, OSError) and exc.errno is not None:
        by_errno = type(OSError(exc.errno, ""))  # aiohttp's ClientOSError(ECONNRESET) -> ConnectionResetError
        if by_errno is not OSError:
            yield by_errno
    yield type(exc)
