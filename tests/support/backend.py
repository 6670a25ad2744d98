"""A stand-in for the backend the agent fronts: an HTTP server on a loopback port, on its own thread, switchable
between not listening, answering 200 or 500, hanging (accept, never answer) and resetting every connection."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator
from enum import StrEnum

from tests.support.ports import free_port

_REASONS = {200: "OK", 204: "No Content", 301: "Moved Permanently", 404: "Not Found", 500: "Internal Server Error"}


class Mode(StrEnum):
    DOWN = "down"  # nothing listens: connections are refused
    ANSWER = "answer"  # answer every request with `status`
    HANG = "hang"  # accept and read the request, never answer
    RESET = "reset"  # accept, then reset the connection at once
    GARBAGE = "garbage"  # answer with bytes that are not HTTP


class Backend:
    """127.0.0.1:port. Runs its own event loop on a thread so blocking test code cannot starve it."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.port = free_port()
        self.tls = tls  # a server context: https
        self.mode = Mode.DOWN
        self.status = 200
        self.requests: list[str] = []  # request lines seen (`GET /health?key=... HTTP/1.1`)
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="backend", daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Backend:
        self._thread.start()
        return self

    def set(self, mode: Mode, status: int = 200) -> None:
        """Switch behaviour; connections left hanging are cut when the backend stops listening."""
        self._call(self._set(mode, status))

    def close(self) -> None:
        self._call(self._set(Mode.DOWN, self.status))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def _call(self, coro: object) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)  # type: ignore[arg-type]

    async def _set(self, mode: Mode, status: int) -> None:
        self.mode, self.status = mode, status
        if mode is Mode.DOWN:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()
                self._server = None
            for writer in list(self._writers):
                _reset(writer)
            self._writers.clear()
        elif self._server is None:
            self._server = await asyncio.start_server(
                self._handle, "127.0.0.1", self.port, reuse_address=True, ssl=self.tls
            )

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.mode is Mode.RESET:
            _reset(writer)
            return
        self._writers.add(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.requests.append(head.split(b"\r\n", 1)[0].decode("latin-1"))
            if self.mode is Mode.HANG:
                await reader.read()  # until the client gives up
                return
            if self.mode is Mode.GARBAGE:
                writer.write(b"SSH-2.0-OpenSSH_9.6\r\n")
            else:
                body = b"" if self.status in (204, 304) else b"ok\n" if self.status < 400 else b"unhealthy\n"
                reason = _REASONS.get(self.status, "Status")
                writer.write(
                    f"HTTP/1.1 {self.status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                    "Connection: close\r\n\r\n".encode()
                    + body
                )
            await writer.drain()
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


@contextlib.contextmanager
def backend(mode: Mode = Mode.ANSWER, status: int = 200, tls: ssl.SSLContext | None = None) -> Iterator[Backend]:
    """A started Backend in `mode`; closed on exit."""
    stand_in = Backend(tls).start()
    try:
        stand_in.set(mode, status)
        yield stand_in
    finally:
        stand_in.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST (SO_LINGER 0), as a crashing process's kernel would."""
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError, AttributeError):
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    writer.close()
