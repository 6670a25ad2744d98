"""What asyncpg's protocol is made to do at login: never answer AuthenticationCleartextPassword on a connection
without TLS, note whether the server asked for a password at all, and cut a stream that is not PostgreSQL's.

asyncpg answers the server's authentication requests inside its protocol (coreproto.pyx): on
AuthenticationCleartextPassword it writes the password as it is, in the same call that parsed the request, whatever
the connection. There is no option to refuse, and the password cannot be wrapped (SCRAM insists on an exact `str`).
So the guard sits in front of the parser: a subclass of asyncpg's Protocol reads the server's message headers until
authentication is over (AuthenticationOk, or an error), and when one is AuthenticationCleartextPassword on a
plaintext connection it drops the connection before asyncpg sees the request. The subclass is installed where
asyncpg looks its protocol class up (`asyncpg.protocol.Protocol`, read by connect_utils at each connect): private
API, listed in agent/shared/private_api.py with the tests that guard it.

MD5 (AuthenticationMD5Password) is answered: it sends md5(md5(password + user) + salt), not the password. A server
in the middle that picks the salt can try to guess a weak password offline from it, as against any MD5 login, but
the hash is of no use for a later login; an RDS IAM login never uses MD5 (RDS asks for the token in cleartext, which
needs TLS). SCRAM proves the password without sending it; GSSAPI and SSPI send none.

A server that checks a password sends an authentication request first (cleartext, MD5 or SASL, as RDS IAM's PAM
does too), then AuthenticationOk; under pg_hba.conf trust (or cert, peer) AuthenticationOk comes first (PostgreSQL
protocol, "Message Flow", Start-up). asyncpg keeps no trace of which it was, so the same scan notes it
(`password_asked`). A message type the start-up never sends means another kind of server answered: the connection
is cut at once (asyncpg would wait for the rest of a message that never comes), and the probe then looks at what
answered (agent/probes/drivers/wire.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import asyncpg.protocol

from agent.probes.drivers.guard import MeteredAnswers
from agent.probes.drivers.tls import PG_CLEARTEXT, refusal
from agent.shared.reasons import Failure, Reason

T = TypeVar("T")
PROTOCOL = "pg:protocol"  # the start-up was not PostgreSQL's (docs/reasons.md)
# PostgreSQL frontend/backend protocol, "Message Formats": Authentication* is 'R' with an Int32 request code.
AUTHENTICATION = ord("R")
READY_FOR_QUERY = ord("Z")
ERROR_RESPONSE = ord("E")
AUTHENTICATION_OK = 0
CLEARTEXT_PASSWORD = 3  # AuthenticationCleartextPassword
# What a server may send at start-up: Authentication*, ErrorResponse, NoticeResponse, NegotiateProtocolVersion,
# ParameterStatus, BackendKeyData, ReadyForQuery. Anything else is not PostgreSQL talking.
_STARTUP_TYPES = frozenset(b"RENvSKZ")
_HEADER = 5  # the message type and its Int32 length (which counts itself, not the type)
_AUTH_HEADER = 9  # ... and the request code of an Authentication message
# asyncpg's own class, from its compiled module: install() replaces the name asyncpg.protocol.Protocol, not this.
_ASYNCPG_PROTOCOL: Any = asyncpg.protocol.protocol.Protocol


class AuthRequests:
    """Frames the server's messages until AuthenticationOk (or an ErrorResponse, or ReadyForQuery), finds
    AuthenticationCleartextPassword among them, and notes whether any authentication request came before it.

    Keeps at most one header (9 bytes), whatever the server sends: bodies are counted, never buffered.
    """

    def __init__(self) -> None:
        self._head = bytearray()
        self._skip = 0  # body bytes of the current message still to come
        self.done = False  # authentication is over (AuthenticationOk, an ErrorResponse, ReadyForQuery)
        self.malformed = False
        self.asked = False  # an authentication request came (a password, SASL, GSS, ...)
        self.authenticated = False  # AuthenticationOk came

    def asks_cleartext(self, data: bytes) -> bool:
        """Whether `data`, the next bytes from the server, completes a cleartext password request."""
        view, at = memoryview(data), 0
        while at < len(view) and not (self.done or self.malformed):
            if self._skip:
                step = min(self._skip, len(view) - at)
                self._skip, at = self._skip - step, at + step
                continue
            step = min(self._want() - len(self._head), len(view) - at)
            self._head += view[at : at + step]
            at += step
            if len(self._head) == self._want() and self._message_ends():
                return True
        return False

    def _want(self) -> int:
        return _AUTH_HEADER if self._head[:1] == bytes([AUTHENTICATION]) else _HEADER

    def _message_ends(self) -> bool:
        """A whole header is in: a cleartext request ends the scan (True); any other message is skipped."""
        kind, length = self._head[0], int.from_bytes(self._head[1:_HEADER], "big")
        if kind not in _STARTUP_TYPES or length < len(self._head) - 1:  # not the PostgreSQL protocol
            self.malformed = True
            return False
        if kind == AUTHENTICATION:
            request = int.from_bytes(self._head[_HEADER:], "big")
            if request == CLEARTEXT_PASSWORD:
                return True
            self.authenticated |= request == AUTHENTICATION_OK
            self.asked |= request != AUTHENTICATION_OK and not self.authenticated
        # Authentication is over at AuthenticationOk (nothing after it can ask for a password) or an error: the scan
        # stops there, so a server that then sends message after message costs asyncpg's parsing only.
        self.done = self.authenticated or kind in (READY_FOR_QUERY, ERROR_RESPONSE)
        self._skip = length - (len(self._head) - 1)
        self._head.clear()
        return False


class Refused(Exception):
    """Why GuardedProtocol dropped a connection: the server asked for a cleartext password, or broke the framing."""

    def __init__(self, *, cleartext: bool) -> None:
        super().__init__("cleartext password request" if cleartext else "malformed message")
        self.cleartext = cleartext


class GuardedProtocol(MeteredAnswers, _ASYNCPG_PROTOCOL):  # type: ignore[misc]  # asyncpg's Cython class is untyped
    """asyncpg's protocol, which drops a plaintext connection whose server asks for the password in cleartext, and
    any connection whose start-up is not PostgreSQL's (and, through MeteredAnswers, one whose answer passes the cap:
    agent/probes/drivers/guard.py). `password_asked` is None until AuthenticationOk, then whether a request came."""

    def connection_made(self, transport: asyncio.Transport) -> None:
        # asyncpg hands its protocol the TLS transport once TLS is up, or the plain one when the server refused it
        # (sslmode=prefer) or TLS is off: a cleartext request is refused only on the plain one.
        self._plaintext = transport.get_extra_info("ssl_object") is None
        self._requests: AuthRequests | None = AuthRequests()
        self._refused: Refused | None = None
        self._plain_transport = transport
        self.password_asked: bool | None = None
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        requests = self._requests
        if requests is not None:
            cleartext = requests.asks_cleartext(data)
            if requests.malformed or (cleartext and self._plaintext):
                self._requests, self._refused = None, Refused(cleartext=cleartext)
                self._plain_transport.abort()
                return  # asyncpg never sees the request, so it cannot answer it
            if cleartext:  # over TLS asyncpg answers it: the server did ask, and the scan is over
                self._requests, self.password_asked = None, True
            elif requests.authenticated:
                self.password_asked = requests.asked
            if requests.done:
                self._requests = None
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        # asyncpg fails the pending connect with ConnectionDoesNotExistError caused by what it is given here.
        super().connection_lost(self._refused or exc)


def install() -> None:
    """Have asyncpg build every connection's protocol as a GuardedProtocol (idempotent)."""
    asyncpg.protocol.Protocol = GuardedProtocol


async def guarded(connect: Callable[[], Awaitable[T]], server: str) -> T:
    """`connect()` (an asyncpg.connect call) with the guard installed; a cleartext request raises its ProbeFailure,
    naming `server` (host:port). A malformed start-up stays asyncpg's ConnectionDoesNotExistError, caused by a
    Refused (`malformed()` classifies it), so the probe can look at what answered first."""
    install()
    try:
        return await connect()
    except asyncpg.ConnectionDoesNotExistError as exc:
        refused = exc.__cause__
        if isinstance(refused, Refused) and refused.cleartext:
            raise refusal(PG_CLEARTEXT, server, "asked for the password in cleartext") from None
        raise


def malformed(exc: BaseException) -> Failure | None:
    """`pg:protocol` (server) for a login the guard cut because its start-up was not PostgreSQL's; else None."""
    refused = exc.__cause__
    if not isinstance(refused, Refused) or refused.cleartext:
        return None
    return Failure(Reason.SERVER, PROTOCOL, "a malformed message before the login ended: is it a PostgreSQL server?")


def password_asked(raw: Any) -> bool | None:
    """Whether the server of an open asyncpg connection asked for a password; None if that is not known."""
    asked = getattr(raw._protocol, "password_asked", None)  # private API: listed in agent/shared/private_api.py
    return asked if isinstance(asked, bool) else None
