"""A TCP front for a real server that, once told, answers every connection itself with a hostile answer.

It forwards both ways (a real login, a real HTTP exchange) until `turn(answer)`: from then on it cuts every
connection it had forwarded (so a kept connection or a pooled HTTP one cannot hide the change) and hands each new
one to `answer`, which writes what a hostile peer would (see tests/faults/hostilities.py). `forward()` undoes it.

It runs on its own thread and event loop, like the fault proxy: an answer that writes as fast as the agent reads
must not starve the test's loop, which watches the agent. What it sent is counted per connection, so a row can show
that the agent really was offered more than it kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Sent"], Awaitable[None]]
# A hostile answer stops sending by itself after this many bytes even if the agent keeps reading: a broken guard
# must fail its row (RSS far past the bound), not take the machine's memory with it.
SAFETY_LIMIT = 96 << 20


class Sent:
    """Bytes one hostile connection wrote (the answer adds to it; it stops at SAFETY_LIMIT)."""

    def __init__(self) -> None:
        self.bytes = 0

    async def write(self, writer: asyncio.StreamWriter, data: bytes) -> bool:
        """Write and drain; False once the safety limit is reached (the answer should stop)."""
        if self.bytes >= SAFETY_LIMIT:
            return False
        writer.write(data)
        self.bytes += len(data)
        await writer.drain()
        return True


class HostilePeer:
    """127.0.0.1:port -> upstream (or nothing: `answer` from the start), on its own thread."""

    def __init__(self, upstream: tuple[str, int] | None = None) -> None:
        self.upstream = upstream
        self.answer: Answer | None = None
        self.sent: list[int] = []  # bytes written by each hostile connection, in order
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="hostile-peer", daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def start(self) -> HostilePeer:
        self._thread.start()
        self._call(self._listen())
        return self

    def turn(self, answer: Answer) -> None:
        """Answer every new connection with `answer`; cut the connections forwarded so far."""
        self._call(self._set(answer))

    def forward(self) -> None:
        """Forward new connections to the upstream again; cut the hostile ones still open."""
        self._call(self._set(None))

    def close(self) -> None:
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _set(self, answer: Answer | None) -> None:
        self.answer = answer
        for writer in list(self._writers):
            _reset(writer)
        self._writers.clear()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._set(None)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        answer = self.answer
        try:
            if answer is not None:
                sent = Sent()
                try:
                    await answer(reader, writer, sent)
                finally:
                    self.sent.append(sent.bytes)
            elif self.upstream is not None:
                await self._forward(reader, writer)
        except (OSError, asyncio.IncompleteReadError):
            pass  # the agent dropped the connection: what a guard does
        finally:
            self._writers.discard(writer)
            _reset(writer)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self.upstream is not None
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        self._writers.add(up_writer)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._writers.discard(up_writer)
            _reset(up_writer)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    _reset(writer)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close at once with a reset (SO_LINGER 0): no FIN handshake for either side to wait on."""
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError, AttributeError):
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    writer.close()


@contextlib.contextmanager
def hostile_peer(upstream: tuple[str, int] | None = None) -> Iterator[HostilePeer]:
    peer = HostilePeer(upstream).start()
    try:
        yield peer
    finally:
        peer.close()
