"""The HTTP server's connection cap and the file-descriptor budget it comes from.

aiohttp accepts every connection (it has no cap: aio-libs/aiohttp#675, "an application-level duty"), and each
holds a file descriptor. 1,100 idle sockets against the 1,024 descriptors of a container's default RLIMIT_NOFILE
made /health unreachable and the db probe fail with EMFILE. So: the soft limit is raised to the hard one at start,
descriptors are set aside for the probes, and at the cap a new connection closes the oldest one still open, as
nginx reuses idle keep-alive connections when worker_connections run out. The newest connection is kept because
that is what an ALB or ECS health check is: a fresh connection that sends its request at once; a connection that
has lived longest is an idle one, a slow client, or a scrape between two requests (Prometheus reconnects).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from agent.outputs.logs import RateLimit

MAX_CONNECTIONS = 512  # well above what health checks and scrapes need; ~10 KiB each when held (measured)
MIN_CONNECTIONS = 16
BACKLOG = 128  # the listen queue (aiohttp's and asyncio's default): accepted in one go before the cap sees them
BASE_FDS = 64  # the interpreter, the event loop, pipes, the AWS clients' connection pools
FDS_PER_TARGET = 4  # a kept connection, a fresh login beside it, a TLS or DNS socket, the backend probe
EVICTION_LOG_BURST, EVICTION_LOG_EVERY = 1, 60.0  # one line a minute while it lasts

log = logging.getLogger("agent.http")


@dataclass(frozen=True, slots=True)
class DescriptorBudget:
    """RLIMIT_NOFILE after start-up and the connection cap it allows."""

    soft: int
    hard: int
    max_connections: int


def descriptor_budget(targets: int) -> DescriptorBudget:
    """Raise the soft RLIMIT_NOFILE to the hard one (ECS on EC2: 1,024 soft by default), then keep BASE_FDS, the
    listen backlog and FDS_PER_TARGET per target out of it for everything that is not an HTTP connection."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:  # a hard limit above the kernel's fs.nr_open: keep the soft one
            log.warning("cannot raise the open-files limit from %d to %d: %s", soft, hard, exc)
    unlimited = soft == resource.RLIM_INFINITY  # not on Linux (fs.nr_open bounds it), but -1 must not mean "none"
    return DescriptorBudget(soft, hard, MAX_CONNECTIONS if unlimited else connection_limit(soft, targets))


def connection_limit(soft: int, targets: int) -> int:
    """The cap for a soft RLIMIT_NOFILE: MAX_CONNECTIONS, less if the descriptors the probes need would not fit."""
    reserved = BASE_FDS + BACKLOG + FDS_PER_TARGET * targets
    return max(MIN_CONNECTIONS, min(MAX_CONNECTIONS, soft - reserved))


class ConnectionCap:
    """At most `limit` open connections: at the limit, a new connection closes the oldest open one."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.evicted = 0  # connections closed to make room, since start
        self._server: web.Server | None = None
        self._log_limit = RateLimit(EVICTION_LOG_BURST, EVICTION_LOG_EVERY)

    def open_connections(self) -> int:
        """Connections open now (0 before the server starts)."""
        if self._server is None:
            return 0
        return sum(1 for c in self._server.connections if not _closing(c))

    def protocol_factory(self, server: web.Server) -> Callable[[], RequestHandler]:
        """What asyncio calls for each accepted connection: make room if needed, then aiohttp's handler."""
        self._server = server

        def accept() -> RequestHandler:
            connections = server.connections  # in the order they were made (a dict's order)
            if len(connections) >= self.limit:
                self._make_room(connections)
            return server()

        return accept

    def _make_room(self, connections: list[RequestHandler]) -> None:
        """Close the oldest until one more fits. A closed connection stays listed until its handler task ends
        (the next turns of the loop): those count as room already made, and they are the oldest, so this stops
        after a few steps instead of scanning every connection on every accept."""
        excess, closed = len(connections) - self.limit + 1, 0
        for handler in connections:
            if excess <= 0:
                break
            excess -= 1
            if not _closing(handler):
                handler.force_close()  # its descriptor is released on the loop's next turn
                closed += 1
        if closed:
            self.evicted += closed
            self._say_evicted()

    def _say_evicted(self) -> None:
        allowed, _ = self._log_limit.allow()
        if allowed:
            log.warning(
                "HTTP connection cap reached (%d open): closing the oldest connection for each new one; %d closed"
                " so far (health_agent_http_connections_evicted_total); said at most once a minute",
                self.limit,
                self.evicted,
            )


def _closing(connection: RequestHandler) -> bool:
    transport = connection.transport
    return transport is None or transport.is_closing()


class CappedSite(web.BaseSite):
    """web.TCPSite with a ConnectionCap in front of aiohttp's protocol factory; host as TCPSite takes it, or a
    socket already bound (`sock`, the dual-stack `::` of agent.outputs.listen) in its place."""

    __slots__ = ("_cap", "_host", "_owner", "_port", "_queue", "_sock")

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str | Sequence[str] | None,
        port: int,
        cap: ConnectionCap,
        sock: socket.socket | None = None,
    ) -> None:
        super().__init__(runner, backlog=BACKLOG)
        self._owner = runner
        self._host, self._port, self._cap, self._queue, self._sock = host, port, cap, BACKLOG, sock

    @property
    def name(self) -> str:
        """How aiohttp names a site in its messages."""
        return f"http://{self._host or '0.0.0.0'}:{self._port}"

    async def start(self) -> None:
        """Listen; BaseSite.stop() (from runner.cleanup()) closes what is set on `_server`, a private name of
        aiohttp's recorded in agent/shared/private_api.py."""
        await super().start()
        server = self._owner.server
        assert server is not None, "runner.setup() first"
        loop = asyncio.get_running_loop()
        factory = self._cap.protocol_factory(server)
        if self._sock is not None:
            self._server = await loop.create_server(factory, sock=self._sock, backlog=self._queue)
        else:
            self._server = await loop.create_server(factory, self._host, self._port, backlog=self._queue)
