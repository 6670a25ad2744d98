"""What answers at a database port, told from its first bytes: a login that stalls or fails in a way only the wrong
kind of server explains is looked at once more, on a side connection, and reported as what it is.

A MySQL server speaks first: its greeting (protocol 10, a version string) or an ERR packet. A PostgreSQL server
waits, and answers an SSLRequest with one byte, `S` or `N` (PostgreSQL protocol, "Message Flow", SSL Session
Encryption). An HTTP server answers that request with a status line, a TLS server with an alert record.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from agent.config.dsn import Engine
from agent.shared.reasons import Failure, ProbeFailure, Reason

T = TypeVar("T")
PATIENCE = 1.0  # seconds a MySQL greeting may take before what answers is looked at (a server greets at once)
WINDOW = 0.5  # seconds to wait for a greeting, then for the reply to the SSLRequest
_ENOUGH = 6  # bytes that tell a speaker: a MySQL packet header and its first byte, an "HTTP/", a TLS record header
SSL_REQUEST = struct.pack("!ii", 8, 80877103)  # PostgreSQL's SSLRequest: length 8, code 1234.5679
CODE = "db:wrong_server"
_NAMES = {Engine.POSTGRESQL: "PostgreSQL", Engine.MYSQL: "MySQL"}
# Failures whose reason shows the server answered in the engine's own protocol: nothing to look at.
_SPOKE = frozenset({Reason.AUTH, Reason.CONFIG, Reason.SERVER, Reason.THROTTLED, Reason.DNS})
_NOT_OPENED = (ssl.SSLError, ConnectionRefusedError, socket.gaierror, TimeoutError)
_MYSQL_NOT_OPENED = "mysql:2003"
# Codes for an answer out of the engine's protocol (a `server` reason, yet not the engine speaking): worth a look.
_GARBLED = frozenset(
    {"pg:protocol", "mysql:protocol"}
)  # "Can't connect to MySQL server": the TCP connection never opened


class Speaker(StrEnum):
    """What the first bytes at a port look like."""

    MYSQL = "a MySQL server"
    POSTGRESQL = "a PostgreSQL server"
    HTTP = "an HTTP server"
    TLS = "a TLS server (an HTTPS port, or a proxy that expects TLS first)"
    OTHER = "something else"
    SILENT = "nothing"  # no byte, before or after the SSLRequest
    CLOSED = "no server"  # refused, reset or closed without a byte


_ENGINE_SPEAKER = {Engine.POSTGRESQL: Speaker.POSTGRESQL, Engine.MYSQL: Speaker.MYSQL}
_NO_VERDICT = frozenset({Speaker.SILENT, Speaker.CLOSED})


@dataclass(frozen=True, slots=True)
class Answer:
    """What answered, and a short sample of what it said (a MySQL version, the first bytes)."""

    speaker: Speaker
    sample: str = ""


def recognise(data: bytes, *, after_ssl_request: bool) -> Answer:
    """The speaker of `data`: unsolicited bytes, or the reply to an SSLRequest."""
    if after_ssl_request and data in (b"S", b"N"):
        return Answer(Speaker.POSTGRESQL)
    mysql = _mysql_greeting(data)
    if mysql is not None:
        return mysql
    if data.startswith(b"HTTP/"):
        return Answer(Speaker.HTTP, data.split(b"\r\n", 1)[0][:40].decode("ascii", "replace"))
    if len(data) >= 2 and data[0] in (0x15, 0x16) and data[1] == 0x03:  # TLS record: alert or handshake
        return Answer(Speaker.TLS)
    return Answer(Speaker.OTHER, repr(data[:16]) + ("..." if len(data) > 16 else ""))


def _mysql_greeting(data: bytes) -> Answer | None:
    """A MySQL Initial Handshake packet (protocol 10) or an ERR packet (0xFF) sent instead of one; a greeting's
    start is enough (a slow server trickles it: it is still MySQL)."""
    if len(data) >= 5 and data[3] == 0 and data[4] == 0x0A and b"\x00" not in data[5:]:
        return Answer(Speaker.MYSQL, data[5:].decode("ascii", "replace"))  # the version, as far as it came
    if len(data) < 6 or data[3] != 0:  # 3-byte length, sequence id 0
        return None
    length = int.from_bytes(data[:3], "little")
    payload = data[4 : 4 + length]
    if payload[:1] == b"\x0a" and b"\x00" in payload[1:]:
        version = payload[1 : payload.index(b"\x00", 1)]
        if version and all(32 <= c < 127 for c in version):
            return Answer(Speaker.MYSQL, version.decode("ascii"))
    if payload[:1] == b"\xff" and len(payload) >= 3:
        errno = int.from_bytes(payload[1:3], "little")
        return Answer(Speaker.MYSQL, f"error {errno}")
    return None


async def identify(host: str, port: int, *, window: float = WINDOW) -> Answer:
    """Open a side connection: read what the server says unasked, else send an SSLRequest and read the reply."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), window)
    except (OSError, TimeoutError):
        return Answer(Speaker.CLOSED)
    try:
        data = await _read(reader, window, _ENOUGH)  # unasked: a MySQL greeting, trickled or not
        if data is None:
            writer.write(SSL_REQUEST)
            data = await _read(reader, window)
            if data is None:
                return Answer(Speaker.SILENT)
            return recognise(data, after_ssl_request=True) if data else Answer(Speaker.CLOSED)
        return recognise(data, after_ssl_request=False) if data else Answer(Speaker.CLOSED)
    except OSError:
        return Answer(Speaker.CLOSED)
    finally:
        writer.transport.abort()  # a reset, not a goodbye: nothing more is said to the server


async def _read(reader: asyncio.StreamReader, window: float, enough: int = 1) -> bytes | None:
    """The first bytes within `window`, up to 512: read until `enough` came (a server may trickle a greeting) or the
    window ends; b'' at EOF; None if nothing came."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + window
    data = b""
    while len(data) < enough:
        try:
            more = await asyncio.wait_for(reader.read(512 - len(data)), max(0.0, deadline - loop.time()))
        except TimeoutError:
            break
        if not more:
            return data
        data += more
    return data or None


def wrong_server(engine: Engine, host: str, port: int, answer: Answer) -> ProbeFailure | None:
    """The config failure for a port where another kind of server answers; None if it is the engine's own,
    or if nothing can be told (silent, closed)."""
    if answer.speaker is _ENGINE_SPEAKER[engine] or answer.speaker in _NO_VERDICT:
        return None
    said = f"it answered like {answer.speaker.value}"
    if answer.speaker is Speaker.OTHER:
        said = f"it sent bytes that are neither a MySQL greeting nor a PostgreSQL reply: {answer.sample}"
    elif answer.sample:
        said += f": {answer.sample}"
    message = f"the server at {_where(host, port)} does not speak {_NAMES[engine]} ({said})"
    return ProbeFailure(Reason.CONFIG, CODE, message)


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def login_or_wrong_server(
    connecting: Awaitable[T],
    *,
    engine: Engine,
    host: str,
    port: int,
    errors: tuple[type[BaseException], ...],
    classify: Callable[[BaseException], Failure | None],
) -> T:
    """Await a driver's login; if it fails with one of the driver's `errors` without the server having spoken the
    engine's protocol, look at what answers at the port and raise `wrong_server`'s failure instead."""
    try:
        return await connecting
    except errors as exc:
        if _worth_a_look(exc, classify):
            verdict = wrong_server(engine, host, port, await identify(host, port))
            if verdict is not None:
                raise verdict from None
        raise


async def greeting_or_wrong_server(greeting: Awaitable[T], *, host: str, port: int, patience: float) -> T:
    """Await a MySQL server's greeting; if none has come within `patience` (a MySQL server greets at once), look
    at what answers at the port, and raise `wrong_server`'s failure if it is another kind of server."""
    waiting: asyncio.Future[T] = asyncio.ensure_future(greeting)
    try:
        done, _ = await asyncio.wait({waiting}, timeout=patience)
        if not done:  # a PostgreSQL or HTTP server waits for the client to speak first
            verdict = wrong_server(Engine.MYSQL, host, port, await identify(host, port))
            if verdict is not None:
                raise verdict
        return await waiting
    finally:
        if not waiting.done():
            waiting.cancel()
            await asyncio.wait({waiting})  # unwound before the caller closes the socket; our own cancel propagates


def _worth_a_look(exc: BaseException, classify: Callable[[BaseException], Failure | None]) -> bool:
    """Whether a failed login could be the wrong server: not the server's own words, not a TLS handshake
    (TLS was offered, in the engine's protocol), not a connection that never opened (refused, no route, no
    name, a TCP timeout; aiomysql's 2003 wraps them all)."""
    if any(isinstance(e, _NOT_OPENED) for e in (exc, exc.__cause__)):
        return False
    failure = classify(exc)
    if failure is None or failure.code in _GARBLED:
        return True
    return not (failure.reason in _SPOKE or failure.code.startswith(_MYSQL_NOT_OPENED))
