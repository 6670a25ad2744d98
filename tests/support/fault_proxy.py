"""A TCP proxy in front of a real server, on its own thread, that can refuse, hang, slow down or reset connections."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from enum import StrEnum


class Fault(StrEnum):
    PASS = "pass"  # forward both ways
    REFUSE = "refuse"  # nothing listens: new connections are refused, open ones are cut
    HANG = "hang"  # accept, then never forward a byte (open ones stop forwarding too)
    RESET = "reset"  # accept, then reset at once (a connection reset during the handshake)
    SLOW = "slow"  # forward both ways, each chunk `delay` seconds late (a congested link or an overloaded server)


class FaultProxy:
    """127.0.0.1:port -> upstream. Runs its own event loop on a thread so blocking tests cannot starve it."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.fault = Fault.PASS
        self.delay = 0.0  # seconds per forwarded chunk in SLOW mode
        self.port = _free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._released = asyncio.Event()
        self.accepted: list[float] = []  # time.monotonic() of every client connection
        # time.monotonic() of every client connection that sent something: a login, not a TCP-only reachability look
        self.spoke: list[float] = []

    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def set(self, fault: Fault, delay: float = 0.0) -> None:
        """Switch behaviour; cutting or freezing connections that are already open, as a real fault would.

        `delay` is how late SLOW forwards each chunk (open connections slow down too).
        """
        self.delay = delay
        self._call(self._set(fault))

    def close(self) -> None:
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def _call(self, coro: object) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)  # type: ignore[arg-type]

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def _set(self, fault: Fault) -> None:
        previous, self.fault = self.fault, fault
        if fault is Fault.REFUSE:
            await self._stop_listening()
            self._cut_all()
        elif previous is Fault.REFUSE:
            await self._listen()
        if fault is Fault.PASS:
            self._released.set()
            self._released = asyncio.Event()
        elif fault is Fault.RESET:
            self._cut_all()

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def _cut_all(self) -> None:
        for writer in list(self._writers):
            _reset(writer)
        self._writers.clear()

    async def _shutdown(self) -> None:
        # Cut and release first: the server's wait_closed() waits for its handlers, and a hung one waits on _released
        # (no longer `hang`, or a frozen pipe would spin on the released event).
        self.fault = Fault.PASS
        self._cut_all()
        self._released.set()
        await self._stop_listening()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted.append(time.monotonic())
        if self.fault is Fault.RESET:
            _reset(writer)
            return
        self._writers.add(writer)
        try:
            if self.fault is Fault.HANG:
                await self._released.wait()
                if reader.at_eof() or writer.is_closing():
                    return  # the client gave up while we hung: no half-open login for the server to count
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            self._writers.add(up_writer)
            await asyncio.gather(self._pipe(reader, up_writer, self.spoke), self._pipe(up_reader, writer))
        except OSError:
            pass
        finally:
            self._writers.discard(writer)
            _reset(writer)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, first_data: list[float] | None = None
    ) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                if first_data is not None:
                    first_data.append(time.monotonic())
                    first_data = None
                while self.fault is Fault.HANG:  # freeze open connections mid-stream
                    await self._released.wait()
                if self.fault is Fault.SLOW:
                    await asyncio.sleep(self.delay)
                writer.write(data)
                await writer.drain()
        _reset(writer)


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError, AttributeError):
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    writer.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def fault_proxy(host: str, port: int) -> Iterator[FaultProxy]:
    proxy = FaultProxy(host, port).start()
    try:
        yield proxy
    finally:
        proxy.close()
