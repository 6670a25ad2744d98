"""Hostile HTTP peers: the ECS credentials endpoint, STS and Secrets Manager, answering a request with a body
that is gigantic, endless or slow, or with bytes that are not HTTP."""

from __future__ import annotations

import asyncio

from tests.faults.hostile.wire import CHUNK, Build, Hostility, close, endless, filler, garbage, trickle
from tests.support.hostile_peer import Answer, Sent

# The content type each peer really answers with: a hostile one looks the part.
CONTENT_TYPES = {
    "credentials": "application/json",
    "sts": "text/xml",
    "secretsmanager": "application/x-amz-json-1.1",
}


async def read_request(reader: asyncio.StreamReader) -> None:
    """Read one request: its head, then as much body as Content-Length says."""
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            await reader.readexactly(int(value))


def head(content_type: str, *fields: str) -> bytes:
    lines = ["HTTP/1.1 200 OK", f"Content-Type: {content_type}", *fields, "", ""]
    return "\r\n".join(lines).encode()


def answer(service: str) -> Build:
    """The builder of hostile answers for one service (a key of CONTENT_TYPES)."""
    content_type = CONTENT_TYPES[service]

    def build(hostility: Hostility, canary: str) -> Answer:
        async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sent: Sent) -> None:
            await read_request(reader)
            body = filler(canary)
            if hostility is Hostility.HUGE:
                await sent.write(writer, head(content_type, f"Content-Length: {1 << 30}"))
                await endless(writer, sent, body)
            elif hostility is Hostility.ENDLESS:
                await sent.write(writer, head(content_type, "Transfer-Encoding: chunked"))
                await endless(writer, sent, b"%x\r\n%s\r\n" % (CHUNK, body))
            elif hostility is Hostility.SLOW:
                await sent.write(writer, head(content_type, f"Content-Length: {1 << 20}"))
                await trickle(writer, sent, body[:256])
            else:
                await sent.write(writer, garbage(canary))
                await close(writer)

        return respond

    return build
