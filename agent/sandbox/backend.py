"""The sandbox's stand-in backend: the container the agent fronts, with a shallow liveness endpoint, GET /health.

It answers 200 until broken: `hang` accepts and never answers, `500` answers 500, `down` stops listening (the
container exited). Point AGENT_APP_URL at it, as a task definition points it at the real backend's /health.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum

from aiohttp import web

from agent.sandbox.postgres import free_port

HEALTH_PATH = "/health"


class BackendMode(StrEnum):
    """How the stand-in backend behaves."""

    OK = "ok"
    HANG = "hang"
    ERROR = "500"
    DOWN = "down"


class StandInBackend:
    """An aiohttp app on 127.0.0.1: a free port; `set_mode` breaks or fixes it while the agent watches."""

    def __init__(self) -> None:
        self.port = free_port()
        self.mode = BackendMode.OK
        self._released = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    @property
    def url(self) -> str:
        """The URL AGENT_APP_URL gets."""
        return f"http://127.0.0.1:{self.port}{HEALTH_PATH}"

    async def start(self) -> None:
        """Listen on the port."""
        app = web.Application()
        app.router.add_get(HEALTH_PATH, self._health)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        await self._listen()

    async def stop(self) -> None:
        """Release a hung request and stop listening."""
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = self._site = None

    async def set_mode(self, mode: BackendMode) -> None:
        """Switch behaviour: `down` closes the listener, any other mode opens it again."""
        self.mode = mode
        if mode is BackendMode.HANG:
            self._released.clear()
        else:
            self._released.set()
        if mode is BackendMode.DOWN and self._site is not None:
            await self._site.stop()
            self._site = None
        elif mode is not BackendMode.DOWN and self._site is None:
            await self._listen()

    async def _listen(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await self._site.start()

    async def _health(self, request: web.Request) -> web.Response:
        if self.mode is BackendMode.HANG:
            await self._released.wait()  # until fixed: then it answers as the new mode says
        if self.mode is BackendMode.ERROR:
            return web.Response(status=500, text="stand-in backend: broken on purpose\n")
        return web.Response(text="ok\n")
