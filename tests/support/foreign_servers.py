"""Loopback services that are not databases, for a DSN that points at the wrong port: a real HTTP server (aiohttp),
and a server that speaks first in bytes no database sends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

GARBAGE = b"\x00\x01garbage-here\r\n"


@contextlib.asynccontextmanager
async def http_server() -> AsyncIterator[int]:
    """An aiohttp server on a loopback port (it answers what is not HTTP with 400 Bad Request)."""

    async def page(_request: web.Request) -> web.Response:
        return web.Response(text="a web page")

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def speaking_server(first: bytes = GARBAGE) -> AsyncIterator[int]:
    """A server that sends `first` (three times) as soon as a client connects, then holds the connection open
    without another word."""
    writers: set[asyncio.StreamWriter] = set()

    async def handle(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.add(writer)
        writer.write(first * 3)
        with contextlib.suppress(OSError):
            await writer.drain()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()
