"""Hostile MySQL servers (client/server protocol, "Protocol Basics" and "Connection Phase"): the greeting
(HandshakeV10), an ERR packet after the client's handshake response, and the TLS handshake after its SSL request."""

from __future__ import annotations

import asyncio
import os
import struct

from pymysql.constants import CLIENT

from tests.faults.hostile.tls import hostile_handshake
from tests.faults.hostile.wire import Hostility, close, filler, garbage, trickle
from tests.support.hostile_peer import Answer, Sent
from tests.support.protocol_front import MYSQL_CAPABILITIES

MAX_PAYLOAD = 0xFFFFFF  # a payload of exactly this length announces that another packet continues it


def packet(sequence: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "little") + bytes([sequence % 256]) + payload


def header(sequence: int, length: int) -> bytes:
    return length.to_bytes(3, "little") + bytes([sequence % 256])


def handshake_v10(tls: bool = False) -> bytes:
    """A plausible greeting; `tls` offers CLIENT_SSL."""
    capabilities = MYSQL_CAPABILITIES | (CLIENT.SSL if tls else 0)
    salt = bytes(33 + b % 90 for b in os.urandom(20))  # printable, never NUL
    return (
        b"\x0a8.0.36-hostile-stand-in\0"
        + struct.pack("<I", 7)
        + salt[:8]
        + b"\0"
        + struct.pack("<HBHH", capabilities & 0xFFFF, 33, 2, capabilities >> 16)
        + bytes([len(salt) + 1])
        + b"\0" * 10
        + salt[8:]
        + b"\0mysql_native_password\0"
    )


async def read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readexactly(4)
    return head[3], await reader.readexactly(int.from_bytes(head[:3], "little"))


async def _stream(writer: asyncio.StreamWriter, sent: Sent, count: int, canary: str) -> bool:
    """Write `count` bytes of filler; False if the agent (or the safety limit) stopped it."""
    body = filler(canary)
    for _ in range(count // len(body)):
        if not await sent.write(writer, body):
            return False
    return await sent.write(writer, body[: count % len(body)])


async def _oversized(writer: asyncio.StreamWriter, sent: Sent, first: int, canary: str, continued: bool) -> None:
    """One packet of MAX_PAYLOAD - 1 bytes (`continued` False), or MAX_PAYLOAD-byte packets that each announce
    the next, until the agent drops the connection."""
    sequence = first
    while True:
        length = MAX_PAYLOAD if continued else MAX_PAYLOAD - 1
        if not await sent.write(writer, header(sequence, length)) or not await _stream(writer, sent, length, canary):
            return
        if not continued:
            return
        sequence += 1


def greeting(hostility: Hostility, canary: str) -> Answer:
    """What the server says first, instead of its HandshakeV10."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sent: Sent) -> None:
        if hostility in (Hostility.HUGE, Hostility.ENDLESS):
            await _oversized(writer, sent, 0, canary, continued=hostility is Hostility.ENDLESS)
        elif hostility is Hostility.SLOW:
            await trickle(writer, sent, packet(0, handshake_v10()))
        else:
            await sent.write(writer, packet(0, b"\x01" + garbage(canary)))
        await close(writer)

    return answer


def error(hostility: Hostility, canary: str) -> Answer:
    """A greeting, then what comes instead of the OK/ERR to the client's handshake response."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sent: Sent) -> None:
        await sent.write(writer, packet(0, handshake_v10()))
        sequence, _ = await read_packet(reader)
        err = b"\xff" + struct.pack("<H", 1045) + b"#28000"
        if hostility in (Hostility.HUGE, Hostility.ENDLESS):
            continued = hostility is Hostility.ENDLESS
            length = MAX_PAYLOAD if continued else MAX_PAYLOAD - 1
            await sent.write(writer, header(sequence + 1, length) + err)
            if await _stream(writer, sent, length - len(err), canary) and continued:
                await _oversized(writer, sent, sequence + 2, canary, continued=True)
        elif hostility is Hostility.SLOW:
            await trickle(writer, sent, packet(sequence + 1, err + f"Access denied ({canary})".encode()))
        else:
            await sent.write(writer, packet(sequence + 1, err + garbage(canary, 512)))
        await close(writer)

    return answer


def tls(hostility: Hostility, canary: str) -> Answer:
    """A greeting that offers TLS, the client's SSL request packet, then a hostile handshake."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sent: Sent) -> None:
        await sent.write(writer, packet(0, handshake_v10(tls=True)))
        await read_packet(reader)  # SSLRequest: capabilities, max packet, charset
        await hostile_handshake(hostility, canary, reader, writer, sent)

    return answer
