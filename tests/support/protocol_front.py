"""A loopback front for a real database server: it forwards every connection until told to answer new ones
itself, in the server's own protocol, with the error a throttling RDS Proxy sends (PostgreSQL ErrorResponse,
MySQL ERR packet). Connections already forwarded stay forwarded, as a kept connection does behind a proxy.

It runs on the test's event loop, like the other AWS and credentials stand-ins of the fault suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import struct
from collections.abc import Awaitable, Callable

from pymysql.constants import CLIENT

Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

# PostgreSQL frontend/backend protocol, "Message Formats": the request codes that come without a message type.
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
MYSQL_CAPABILITIES = (  # what a MySQL 8 / MariaDB server offers, without TLS (the stand-ins share it)
    CLIENT.LONG_PASSWORD
    | CLIENT.LONG_FLAG
    | CLIENT.CONNECT_WITH_DB
    | CLIENT.PROTOCOL_41
    | CLIENT.TRANSACTIONS
    | CLIENT.SECURE_CONNECTION
    | CLIENT.MULTI_RESULTS
    | CLIENT.PLUGIN_AUTH
    | CLIENT.PLUGIN_AUTH_LENENC_CLIENT_DATA
    | CLIENT.CONNECT_ATTRS
)


class ProtocolFront:
    """127.0.0.1:port -> upstream; `refuse(answer)` makes new connections get `answer` instead."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.answer: Answer | None = None
        self.answered = 0  # connections answered with the error (a TCP probe that sends nothing included)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> ProtocolFront:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def refuse(self, answer: Answer) -> None:
        """Answer every new connection with `answer` (see pg_error, mysql_error)."""
        self.answer = answer

    def forward(self) -> None:
        """Forward new connections to the server again."""
        self.answer = None

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            answer = self.answer
            if answer is not None:
                self.answered += 1
                with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                    await answer(reader, writer)
                return
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            self._writers.add(up_writer)
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            finally:
                self._writers.discard(up_writer)
        except OSError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


def pg_error(sqlstate: str, message: str) -> Answer:
    """Read the startup packet (answering SSLRequest and GSSENCRequest with 'N'), then send a FATAL
    ErrorResponse with fields S, V, C (SQLSTATE) and M (message), and close."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            length, code = struct.unpack("!II", await reader.readexactly(8))
            await reader.readexactly(length - 8)
            if code not in (SSL_REQUEST, GSSENC_REQUEST):
                break  # the StartupMessage (protocol 3.0)
            writer.write(b"N")
            await writer.drain()
        fields = [(b"S", "FATAL"), (b"V", "FATAL"), (b"C", sqlstate), (b"M", message)]
        body = b"".join(key + value.encode() + b"\0" for key, value in fields) + b"\0"
        writer.write(b"E" + struct.pack("!I", len(body) + 4) + body)
        await writer.drain()

    return answer


def mysql_error(errno: int, message: str, sqlstate: str = "HY000") -> Answer:
    """Greet (HandshakeV10, no TLS offered), read the client's handshake response, then send an ERR packet."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_mysql_packet(0, _greeting()))
        await writer.drain()
        header = await reader.readexactly(4)
        await reader.readexactly(int.from_bytes(header[:3], "little"))
        payload = b"\xff" + struct.pack("<H", errno) + b"#" + sqlstate.encode() + message.encode()
        writer.write(_mysql_packet(header[3] + 1, payload))
        await writer.drain()

    return answer


def _greeting() -> bytes:
    salt = bytes(33 + b % 90 for b in secrets.token_bytes(20))  # printable, never NUL
    return (
        b"\x0a"
        + b"8.0.28-rds-proxy-stand-in\0"
        + struct.pack("<I", 1)
        + salt[:8]
        + b"\0"
        + struct.pack("<H", MYSQL_CAPABILITIES & 0xFFFF)
        + bytes([33])  # utf8_general_ci
        + struct.pack("<H", 2)  # SERVER_STATUS_AUTOCOMMIT
        + struct.pack("<H", MYSQL_CAPABILITIES >> 16)
        + bytes([len(salt) + 1])
        + b"\0" * 10
        + salt[8:]
        + b"\0"
        + b"mysql_native_password\0"
    )


def _mysql_packet(sequence: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "little") + bytes([sequence]) + payload
