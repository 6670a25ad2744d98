"""Whether a PostgreSQL server asked for the password before it let a login in, read off asyncpg's own connection.

A server that checks a password sends an authentication request first (AuthenticationCleartextPassword, MD5Password
or SASL, as RDS IAM's PAM does too), then AuthenticationOk; under pg_hba.conf trust (or cert, peer) AuthenticationOk
comes first (PostgreSQL protocol, "Message Flow", Start-up). asyncpg keeps no trace of which it was, so the agent
has asyncpg build its connections with a subclass of its protocol that reads the authentication messages as they
arrive, and passes every byte on unchanged. Imported only with the pg driver.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import asyncpg.protocol

_AUTHENTICATION = ord("R")
_ERROR = ord("E")
# What a PostgreSQL server may send before authentication ends: Authentication*, ErrorResponse, NoticeResponse,
# NegotiateProtocolVersion. Anything else is not PostgreSQL talking.
_STARTUP_TYPES = frozenset(b"REN" + b"v")
_OK = 0
_HEADER = struct.Struct("!Bi")  # message type, length (which counts itself, not the type byte)
_MAX_LOOK = 64 * 1024  # authentication ends within a few messages; never hold more than this


class AuthFlow:
    """The server's authentication messages, read until AuthenticationOk or an error."""

    def __init__(self) -> None:
        self.asked = False  # an authentication request came (the server wanted a password, or SASL, GSS, ...)
        self.done = False
        self.garbled = False  # the stream is not PostgreSQL's (another kind of server answered)
        self._buffer = b""

    def feed(self, data: bytes) -> None:
        """Read the messages in `data` (any split of the stream) until authentication is over."""
        if self.done:
            return
        self._buffer += data
        while len(self._buffer) >= _HEADER.size:
            kind, length = _HEADER.unpack_from(self._buffer)
            end = 1 + length
            if kind not in _STARTUP_TYPES or length < 4:
                self.garbled = self.done = True
                break
            if kind == _AUTHENTICATION and len(self._buffer) >= _HEADER.size + 4:
                code = struct.unpack_from("!i", self._buffer, _HEADER.size)[0]
                self.asked |= code != _OK
                self.done = code == _OK
            elif kind == _ERROR:
                self.done = True
            if self.done or len(self._buffer) < end or end > _MAX_LOOK:
                break
            self._buffer = self._buffer[end:]
        if self.done or len(self._buffer) > _MAX_LOOK:
            self.done, self._buffer = True, b""


class WatchingProtocol(asyncpg.protocol.Protocol):  # type: ignore[misc]  # asyncpg ships no type information
    """asyncpg's protocol, with an AuthFlow fed every byte before asyncpg parses it; a stream that is not
    PostgreSQL's is cut at once (asyncpg would wait for the rest of a message that never comes)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.auth_flow = AuthFlow()
        self.watched: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.watched = transport
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        garbled = self.auth_flow.garbled
        self.auth_flow.feed(data)
        if self.auth_flow.garbled and not garbled and isinstance(self.watched, asyncio.Transport):
            self.watched.abort()  # asyncpg reports a closed connection; the probe then looks at what answered
            return
        super().data_received(data)


def install() -> None:
    """Have asyncpg build connections with WatchingProtocol: its connect looks `asyncpg.protocol.Protocol` up at
    each connection (private API: listed in agent/shared/private_api.py)."""
    if not issubclass(asyncpg.protocol.Protocol, WatchingProtocol):
        asyncpg.protocol.Protocol = WatchingProtocol


def password_asked(raw: Any) -> bool | None:
    """Whether the server of an open asyncpg connection asked for a password; None if it was not watched."""
    flow = getattr(raw._protocol, "auth_flow", None)
    return flow.asked if isinstance(flow, AuthFlow) and flow.done else None
