"""`ecs-health-agent sandbox`: an ECS task's surroundings on one machine, the real agent inside, and a control
API to break and fix things. Everything listens on 127.0.0.1; Ctrl-C or SIGTERM removes all of it again."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import asyncpg
import moto.server  # noqa: F401 - the extra this command needs: missing, `ecs-health-agent sandbox` says so at once
from aiohttp import web

from agent.sandbox.agent_process import AgentExited, AgentProcess, Stream
from agent.sandbox.aws import CredentialsEndpoint, Identities, MotoServer, assume_role, seed_identities
from agent.sandbox.backend import StandInBackend
from agent.sandbox.control import ACTIONS, create_control_app
from agent.sandbox.database import DatabaseUnavailable, SandboxDatabase, open_database
from agent.sandbox.postgres import SandboxError
from agent.sandbox.world import World
from agent.shared.reasons import describe
from agent.shared.redact import redact

EXIT_OK, EXIT_FAILED = 0, 1
LISTEN_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class SandboxOptions:
    """What `ecs-health-agent sandbox` was asked for."""

    port: int = 8099  # the agent, as in a task
    control_port: int = 8098
    postgres: str | None = None  # an admin DSN of a server to use instead of a throwaway cluster


def say(text: str) -> None:
    """One line of the sandbox's own output (stdout, flushed: it is often piped)."""
    print(text, flush=True)


def run_sandbox(options: SandboxOptions) -> int:
    """Run until Ctrl-C/SIGTERM, then clean up; 0 after a clean stop, 1 when it could not start.

    Needs moto (the `sandbox` extra); agent.cli checks that it imports before calling this.
    """
    return asyncio.run(_main(options))


async def _main(options: SandboxOptions) -> int:
    _stop_on_signals()
    try:
        async with AsyncExitStack() as cleanup:
            return await _run(options, cleanup)
    except asyncio.CancelledError:
        say("sandbox: stopped; everything it started is gone")
        return EXIT_OK
    except AgentExited as exc:
        say(f"sandbox: cannot run: {exc} (its output is above)")
        return EXIT_FAILED
    except (DatabaseUnavailable, OSError) as exc:
        say(f"sandbox: cannot run: {exc}")
        return EXIT_FAILED


def _stop_on_signals() -> None:
    """The first SIGINT/SIGTERM cancels the sandbox (cleanup runs); later ones only say to wait."""
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    stopping = False

    def stop(name: str) -> None:
        nonlocal stopping
        if stopping:
            say(f"sandbox: {name} again: still cleaning up, one moment")
            return
        stopping = True
        say(f"sandbox: {name}: stopping the agent and removing everything the sandbox made")
        main.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig.name)


async def _run(options: SandboxOptions, cleanup: AsyncExitStack) -> int:
    _ensure_free(options.port)  # else the readiness wait could mistake another listener for our agent
    aws = await _start_aws(cleanup)
    world = World(await _start_database(options, cleanup), *aws, backend=await _start_backend(cleanup))
    await world.create_secret_and_role()
    say(f"Secrets Manager: secret {world.secret_arn} holds the role's username and password")
    info: dict[str, Any] = {"agent": {"url": f"http://127.0.0.1:{options.port}", "pid": None}}
    await _serve_control(create_control_app(world, info), options.control_port, cleanup)
    agent = AgentProcess(world.agent_env(options.port), _show)
    cleanup.push_async_callback(_quietly, "the agent", agent.stop)
    await agent.start()
    await agent.wait_listening(options.port, LISTEN_TIMEOUT_SECONDS)
    info["agent"]["pid"] = agent.pid
    _banner(options, world.describe())
    code = await agent.wait()
    say(f"sandbox: the agent exited on its own with code {code}; stopping")
    return EXIT_FAILED


def _ensure_free(port: int) -> None:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the agent's server does: TIME_WAIT is fine
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise OSError(
                f"the agent's port 127.0.0.1:{port} is taken ({exc.strerror}): pick another with --port"
            ) from None


async def _start_aws(cleanup: AsyncExitStack) -> tuple[str, Identities, CredentialsEndpoint]:
    """moto with a task role, and the ECS credentials endpoint handing out that role's credentials."""
    moto = MotoServer()
    url = moto.start()
    cleanup.callback(moto.stop)
    identities = await seed_identities(url)
    keys = await assume_role(url, identities.admin, identities.role_arn, "sandbox-task")
    endpoint = CredentialsEndpoint(keys, role_arn=identities.role_arn)
    await endpoint.start()
    cleanup.push_async_callback(endpoint.stop)
    say(f"AWS: moto at {url} (STS, IAM, Secrets Manager); task role {identities.role_arn}")
    say(f"AWS: ECS credentials endpoint at {endpoint.url} (AWS_CONTAINER_CREDENTIALS_FULL_URI)")
    return url, identities, endpoint


async def _start_backend(cleanup: AsyncExitStack) -> StandInBackend:
    backend = StandInBackend()
    await backend.start()
    cleanup.push_async_callback(_quietly, "the stand-in backend", backend.stop)
    say(f"backend: a stand-in on {backend.url} (its shallow liveness endpoint: AGENT_APP_URL)")
    return backend


async def _start_database(options: SandboxOptions, cleanup: AsyncExitStack) -> SandboxDatabase:
    # A server the user already points the agent at is the natural first candidate (it must let us CREATE ROLE).
    db = await open_database(options.postgres or os.environ.get("AGENT_DB_DSN"), say)
    cleanup.push_async_callback(_quietly, "the PostgreSQL role, database or cluster", db.drop)
    say(f"PostgreSQL: role and database {db.role} ({db.kind}); the agent's DSN is {db.dsn}")
    return db


async def _serve_control(app: web.Application, port: int, cleanup: AsyncExitStack) -> None:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    cleanup.push_async_callback(runner.cleanup)
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
    except OSError as exc:
        raise OSError(f"the control API cannot listen on 127.0.0.1:{port} ({exc.strerror or exc})") from None


async def _quietly(what: str, step: Callable[[], Awaitable[object]]) -> None:
    """Run one cleanup step; a failure is reported and the other steps still run."""
    try:
        await step()
    except (OSError, TimeoutError, asyncpg.PostgresError, SandboxError) as exc:
        say(f"sandbox: could not clean up {what}: {redact(describe(exc))}")


def _banner(options: SandboxOptions, world: dict[str, Any]) -> None:
    agent, control = f"http://127.0.0.1:{options.port}", f"http://127.0.0.1:{options.control_port}"
    lines = [
        "",
        f"The agent runs as in an ECS task, on {agent}. Watch it:",
        f"  curl -s {agent}/status | python3 -m json.tool",
        f"  curl -si {agent}/ready",
        f"  curl -s {agent}/metrics | grep '^health_agent_'",
        f"Break and fix things (control API on {control}):",
        *(f"  curl -X POST {control}{path}\n      {does}\n      -> {watch}" for path, does, watch in ACTIONS),
        f"  curl -s {control}/ | python3 -m json.tool    what runs where, what is broken",
        f"PostgreSQL ({world['postgres']['kind']}): {world['postgres']['dsn']} (the password is only in the secret)",
        "Ctrl-C stops the agent and removes the role, database, cluster, moto and endpoints.",
        "",
    ]
    say("\n".join(lines))


def _show(stream: Stream, raw: bytes) -> None:
    """One line the agent wrote, as `agent | level message` (and its hint); both pipes alike."""
    for line in _readable(raw.decode("utf-8", errors="replace").rstrip()):
        say(f"agent | {line}")


def _readable(line: str) -> list[str]:
    """A JSON log line as `level message` plus its hint (the agent has already redacted it); other text as is."""
    try:
        record = json.loads(line)
    except ValueError:
        return [line] if line else []
    if not isinstance(record, dict) or "message" not in record:
        return [line]
    lines = [f"{record.get('level', '')} {record['message']}".strip()]
    if record.get("hint"):
        lines.append(f"  next: {record['hint']}")
    return lines
