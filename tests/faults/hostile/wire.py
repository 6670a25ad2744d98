"""The hostilities (the columns of docs/hostile-peers.md) and the byte-level helpers every hostile answer uses.

- huge: one answer that claims a gigantic size (a PostgreSQL message of 1 GiB, a MySQL packet of 16 MiB, an HTTP
  Content-Length of 1 GiB, a TLS handshake message of 16 MiB) and sends it as fast as the agent reads;
- endless: well-formed small parts that never end (ParameterStatus or NoticeResponse messages, MySQL packets that
  each announce another, an HTTP body in endless chunks, empty TLS records);
- slow: a plausible answer trickled a byte at a time, never complete (a slow-loris server);
- garbage: bytes that are not the protocol, or an error made of them (invalid UTF-8, terminal escapes, NULs), then
  the peer closes the connection as a server does after its last word.

Every answer carries the canary (a secret of the agent the peer knows, e.g. the password it was sent), so a row's
secret check would see it if the agent echoed what the peer said.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from enum import StrEnum

from tests.support.hostile_peer import Answer, Sent

TRICKLE_SECONDS = 0.05  # between two bytes of a slow answer: 20 bytes a second
SLOW_FOR_SECONDS = 30.0  # a slow answer gives up after this (the agent's timeout comes long before)
CHUNK = 64 * 1024


class Hostility(StrEnum):
    HUGE = "huge"
    ENDLESS = "endless"
    SLOW = "slow"
    GARBAGE = "garbage"


Build = Callable[[Hostility, str], Answer]  # (hostility, canary) -> what the peer does with one connection


def filler(canary: str, size: int = CHUNK) -> bytes:
    """`size` bytes of text repeating the canary (what an echoing peer would send)."""
    unit = f" {canary} ".encode()
    return (unit * (size // len(unit) + 1))[:size]


def garbage(canary: str, size: int = 4096) -> bytes:
    """Random bytes, with the canary, terminal escapes, NULs and invalid UTF-8 among them."""
    middle = b"\x1b[2J\x1b]0;" + canary.encode() + b"\x07\x00\xff\xfe\xc3"
    return os.urandom(size // 2) + middle + os.urandom(size // 2)


async def endless(writer: asyncio.StreamWriter, sent: Sent, chunk: bytes) -> None:
    """Write `chunk` again and again until the agent drops the connection (or the safety limit)."""
    while await sent.write(writer, chunk):
        pass


async def trickle(writer: asyncio.StreamWriter, sent: Sent, data: bytes) -> None:
    """Write `data` one byte every TRICKLE_SECONDS, again and again, for up to SLOW_FOR_SECONDS."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SLOW_FOR_SECONDS
    while loop.time() < deadline:
        for byte in data:
            await sent.write(writer, bytes([byte]))
            await asyncio.sleep(TRICKLE_SECONDS)


async def hold(reader: asyncio.StreamReader) -> None:
    """Keep the connection open until the agent closes it."""
    await reader.read()


async def close(writer: asyncio.StreamWriter) -> None:
    """Close as a server does after its last word (a FIN, not the reset the front ends other answers with)."""
    writer.close()
    await writer.wait_closed()
