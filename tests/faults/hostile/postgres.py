"""Hostile PostgreSQL servers (frontend/backend protocol 3.0, "Message Formats"): the greeting after the
StartupMessage, an ErrorResponse, and the TLS handshake after SSLRequest."""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import Awaitable, Callable

from tests.faults.hostile.tls import hostile_handshake
from tests.faults.hostile.wire import CHUNK, Hostility, close, endless, filler, garbage, trickle
from tests.support.hostile_peer import Answer, Sent
from tests.support.protocol_front import GSSENC_REQUEST, SSL_REQUEST

Step = Callable[[asyncio.StreamReader, asyncio.StreamWriter, Sent], Awaitable[None]]


def message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


async def startup(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tls: bool = False) -> bool:
    """Read the client's opening. With `tls`, answer SSLRequest 'S' and return False (the handshake is next);
    otherwise answer 'N' to it and return True once the StartupMessage was read."""
    while True:
        length, code = struct.unpack("!II", await reader.readexactly(8))
        await reader.readexactly(length - 8)
        if code == SSL_REQUEST and tls:
            writer.write(b"S")
            await writer.drain()
            return False
        if code not in (SSL_REQUEST, GSSENC_REQUEST):
            return True
        writer.write(b"N")
        await writer.drain()


def _after_startup(step: Step) -> Answer:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sent: Sent) -> None:
        if await startup(reader, writer):
            await step(reader, writer, sent)

    return answer


def greeting(hostility: Hostility, canary: str) -> Answer:
    """What the server says after the StartupMessage, instead of an authentication request."""
    auth_ok = message(b"R", struct.pack("!I", 0))

    def parameters(first: int, count: int) -> bytes:
        return b"".join(message(b"S", f"eha_{n}\0{canary}\0".encode()) for n in range(first, first + count))

    async def huge(_: asyncio.StreamReader, writer: asyncio.StreamWriter, sent: Sent) -> None:
        await sent.write(writer, b"R" + struct.pack("!I", 1 << 30))  # an authentication request of 1 GiB
        await endless(writer, sent, filler(canary))

    async def many(_: asyncio.StreamReader, writer: asyncio.StreamWriter, sent: Sent) -> None:
        await sent.write(writer, auth_ok)
        n = 0
        while await sent.write(writer, parameters(n, 1024)):  # each a new name: a dict that would keep them all
            n += 1024

    async def slow(_: asyncio.StreamReader, writer: asyncio.StreamWriter, sent: Sent) -> None:
        await trickle(writer, sent, auth_ok + parameters(0, 1))

    async def junk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sent: Sent) -> None:
        await sent.write(writer, message(b"\x01", garbage(canary)))  # framed: the same verdict every run
        await close(writer)

    steps = {Hostility.HUGE: huge, Hostility.ENDLESS: many, Hostility.SLOW: slow, Hostility.GARBAGE: junk}
    return _after_startup(steps[hostility])


def error(hostility: Hostility, canary: str) -> Answer:
    """An ErrorResponse (or what comes instead of one) after the StartupMessage."""
    fields = [(b"S", "FATAL"), (b"V", "FATAL"), (b"C", "28P01"), (b"M", f"password {canary} rejected " * 8)]
    whole = message(b"E", b"".join(key + value.encode() + b"\0" for key, value in fields) + b"\0")

    async def huge(_: asyncio.StreamReader, writer: asyncio.StreamWriter, sent: Sent) -> None:
        await sent.write(writer, b"E" + struct.pack("!I", 1 << 30) + b"SFATAL\0C28P01\0M")  # 1 GiB, it says
        await endless(writer, sent, filler(canary))

    async def notices(_: asyncio.StreamReader, writer: asyncio.StreamWriter, sent: Sent) -> None:
        notice = message(b"N", f"SWARNING\0C01000\0Mabout {canary}\0\0".encode())
        await endless(writer, sent, notice * (CHUNK // len(notice)))

    async def slow(_: asyncio.StreamReader, writer: asyncio.StreamWriter, sent: Sent) -> None:
        await trickle(writer, sent, whole)

    async def junk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sent: Sent) -> None:
        text = garbage(canary, 512).replace(b"\0", b"")
        await sent.write(writer, message(b"E", b"SFATAL\0C28P01\0M" + text + b"\0\x99" + os.urandom(8) + b"\0\0"))
        await close(writer)

    steps = {Hostility.HUGE: huge, Hostility.ENDLESS: notices, Hostility.SLOW: slow, Hostility.GARBAGE: junk}
    return _after_startup(steps[hostility])


def tls(hostility: Hostility, canary: str) -> Answer:
    """'S' to SSLRequest, then a hostile handshake."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sent: Sent) -> None:
        if not await startup(reader, writer, tls=True):
            await hostile_handshake(hostility, canary, reader, writer, sent)

    return answer
