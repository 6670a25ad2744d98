"""The sandbox's control API on loopback: `curl -X POST 127.0.0.1:8098/break/password` and friends.

An HTTP API rather than typed commands, so a person (curl) and a test (urllib) drive the sandbox the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiohttp import web
from botocore.exceptions import BotoCoreError, ClientError

from agent.sandbox.database import DatabaseUnavailable
from agent.sandbox.postgres import SandboxError
from agent.sandbox.world import ActionRefused, World
from agent.shared.reasons import describe
from agent.shared.redact import redact

WORLD_KEY = web.AppKey("world", World)
INFO_KEY: web.AppKey[dict[str, Any]] = web.AppKey("info", dict)  # the agent URL and pid, from the demo

# (POST path, what it does, what to watch for): the banner and GET / list the same table.
ACTIONS: tuple[tuple[str, str, str], ...] = (
    ("/break/password", "the database password changes, the secret keeps the old one",
     "db fails with reason auth (pg:28P01) at its next fresh login, /ready turns 503 not_ready"),
    ("/rotate-secret", "a new password goes into the database and the secret, as a rotation would",
     "the agent re-reads the secret after the rejected login and recovers: ready"),
    ("/break/credentials", "the ECS credentials endpoint answers 403 (?mode=500|stopped|hang|expired)",
     "credentials fails (auth for 403, network for stopped, timeout for hang)"),
    ("/break/backend", "the backend's /health hangs (?mode=500|down)",
     "app fails (timeout, server app:http_500, network app:refused), scope task: /ready 503 not_ready"),
    ("/break/secret", "the secret is scheduled for deletion",
     "secret fails with reason config at its next fetch (AGENT_SECRET_REFRESH_SECONDS)"),
    ("/break/database", "the throwaway PostgreSQL stops (a shared outage)",
     "db fails with reason network; /ready stays 200 (degraded) so ECS would not churn the fleet"),
    ("/fix", "undo every break", "ready again"),
)  # fmt: skip
_ERRORS = (ActionRefused, DatabaseUnavailable, SandboxError, ClientError, BotoCoreError, OSError, asyncpg.PostgresError)

Action = Callable[[World, web.Request], Awaitable[str]]


def create_control_app(world: World, info: dict[str, Any]) -> web.Application:
    """GET / describes the sandbox; each POST in ACTIONS breaks or fixes one thing."""
    app = web.Application(client_max_size=1024)
    app[WORLD_KEY] = world
    app[INFO_KEY] = info
    app.router.add_get("/", _describe)
    handlers: dict[str, Action] = {
        "/break/password": lambda w, _: w.break_password(),
        "/rotate-secret": lambda w, _: w.rotate_secret(),
        "/break/credentials": lambda w, r: w.break_credentials(r.query.get("mode", "403")),
        "/break/backend": lambda w, r: w.break_backend(r.query.get("mode", "hang")),
        "/break/secret": lambda w, _: w.break_secret(),
        "/break/database": lambda w, _: w.break_database(),
        "/fix": lambda w, _: w.fix(),
    }
    for path, action in handlers.items():
        app.router.add_post(path, _handler(action))
    return app


def _handler(action: Action) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        world = request.app[WORLD_KEY]
        try:
            done = await action(world, request)
        except _ERRORS as exc:
            # Refused or failed: say why (redacted: the sandbox registered every password it made).
            return web.json_response({"ok": False, "error": redact(describe(exc))}, status=409)
        return web.json_response({"ok": True, "done": done, "broken": sorted(world.broken)})

    return handle


async def _describe(request: web.Request) -> web.Response:
    world = request.app[WORLD_KEY]
    info: dict[str, Any] = request.app[INFO_KEY]
    body = {
        **info,
        **world.describe(),
        "actions": [{"POST": path, "does": does, "watch": watch} for path, does, watch in ACTIONS],
    }
    return web.json_response(body)
