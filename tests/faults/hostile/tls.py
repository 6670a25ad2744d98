"""A hostile TLS handshake, once the client has asked for TLS (PostgreSQL's SSLRequest, MySQL's SSL request
packet): what the server sends instead of a ServerHello. OpenSSL, not the agent, bounds what it buffers here;
these rows show that it does, and that the agent reports `tls`."""

from __future__ import annotations

import asyncio
import os
import struct

from tests.faults.hostile.wire import Hostility, close, endless, filler, garbage, trickle
from tests.support.hostile_peer import Sent

_RECORD_MAX = 1 << 14  # TLSPlaintext.length may not exceed 2^14 (RFC 8446, 5.1)


def record(content_type: int, payload: bytes) -> bytes:
    """A TLS record: type, legacy version 3.3, length, payload."""
    return struct.pack("!BHH", content_type, 0x0303, len(payload)) + payload


def server_hello_start() -> bytes:
    """The start of a plausible ServerHello record (handshake type 2, TLS 1.2, a random), for the slow row."""
    body = struct.pack("!H", 0x0303) + os.urandom(32) + b"\x00" + b"\x13\x01" + b"\x00"
    message = b"\x02" + len(body).to_bytes(3, "big") + body
    return record(22, message)


async def hostile_handshake(
    hostility: Hostility, canary: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sent: Sent
) -> None:
    """Read the ClientHello (the client speaks first), then answer it with the hostile handshake."""
    _, _, length = struct.unpack("!BHH", await reader.readexactly(5))
    await reader.readexactly(length)
    if hostility is Hostility.HUGE:  # a ServerHello claiming 16 MiB, in full records for as long as read
        first = b"\x02" + (0xFFFFFF).to_bytes(3, "big") + filler(canary, _RECORD_MAX - 4)
        await sent.write(writer, record(22, first))
        await endless(writer, sent, record(22, filler(canary, _RECORD_MAX)) * 4)
    elif hostility is Hostility.ENDLESS:  # empty handshake records, forever
        await endless(writer, sent, record(22, b"") * 4096)
    elif hostility is Hostility.SLOW:
        await trickle(writer, sent, server_hello_start())
    else:
        await sent.write(writer, garbage(canary))
        await close(writer)
