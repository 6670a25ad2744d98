"""`serve`: owns start-up, the probe scheduler, the HTTP server, signals and the graceful drain."""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from agent import __version__
from agent.config.hosts import address
from agent.config.models import AgentConfig
from agent.outputs.connections import DescriptorBudget, descriptor_budget
from agent.outputs.dump import log_state_dump
from agent.outputs.events import ChangeLog
from agent.outputs.logs import setup_logging
from agent.outputs.server import create_app, start_server
from agent.runtime.drain import Drain
from agent.runtime.heap import FreezeAfterFirstRound
from agent.runtime.plan import Mode, Plan, build_plan
from agent.runtime.scheduler import Observer, Scheduler
from agent.runtime.state import AgentState

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger("agent")

EXIT_OK, EXIT_CANNOT_LISTEN = 0, 1


async def serve(config: AgentConfig) -> int:
    """Run until SIGTERM/SIGINT, then drain: /ready says `draining` for the grace period, then exit 0."""
    setup_logging(config.log_level)
    budget = descriptor_budget(len(config.targets))
    dumper = _Dumper()
    stop = _install_signal_handlers(dumper)
    drain = Drain()  # one deadline for every step below, after the grace (agent.runtime.drain)
    async with AsyncExitStack() as stack:
        aws = None
        if config.uses_aws:
            from agent.aws.clients import AwsClients

            aws = await stack.enter_async_context(AwsClients(timeout_seconds=config.timeout_seconds))
            # Closed within the drain's deadline; the context's own exit then finds nothing left to close.
            stack.push_async_callback(drain.step, "closing the AWS clients", aws.aclose)
        plan = build_plan(config, aws, Mode.SERVE)
        state = AgentState(config, [(p.probe.name, p.probe.target) for p in plan.probes])
        try:
            runner = await start_server(
                create_app(state, config), config.host, config.port, max_connections=budget.max_connections
            )
        except OSError as exc:
            log.error("cannot listen on %s: %s", address(config.host, config.port), exc.strerror or exc)
            return EXIT_CANNOT_LISTEN
        stack.push_async_callback(drain.step, "stopping the HTTP server", runner.cleanup)
        changes = ChangeLog(state)
        heap = FreezeAfterFirstRound((p.probe.name, p.probe.target) for p in plan.probes)
        observers = [changes.observe, heap.observe, *_emf_observers(config, state, stack, drain)]
        scheduler = Scheduler(plan, state, config, observers)
        scheduler.start()
        stack.push_async_callback(scheduler.stop, drain)
        dumper.state, dumper.runner = state, runner
        _log_started(config, plan, budget)
        signame = await stop.get()
        state.start_draining()
        changes.status_may_have_changed()
        log.info("received %s: draining for %gs", signame, config.shutdown_grace_seconds)
        await _grace(stop, config.shutdown_grace_seconds)
    log.info("stopped")
    return EXIT_OK


def _emf_observers(config: AgentConfig, state: AgentState, stack: AsyncExitStack, drain: Drain) -> list[Observer]:
    """The CloudWatch EMF writer, when enabled, hears of every probe result too."""
    if not config.cloudwatch_emf:
        return []
    from agent.outputs.emf import EmfPublisher

    emf = EmfPublisher(state, config)
    emf.start()
    # Registered before the scheduler's stop, so it runs after it: the last runs are written too.
    stack.push_async_callback(drain.step, "writing the last CloudWatch metrics", emf.stop)
    return [emf.observe]


def _install_signal_handlers(dumper: _Dumper) -> asyncio.Queue[str]:
    """SIGTERM/SIGINT: drain and exit. SIGHUP: ignored, said in the log (nothing to reload: the configuration is
    the container's environment, read once; ECS and Kubernetes stop a container with SIGTERM, never SIGHUP, so a
    HUP is a person expecting a reload, or a closed terminal, and the health endpoint must not go away for it).
    SIGUSR1/SIGUSR2: log a state dump. Their default action would end the process without a drain."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, queue.put_nowait, sig.name)
    loop.add_signal_handler(signal.SIGHUP, _hangup)
    for sig in (signal.SIGUSR1, signal.SIGUSR2):
        loop.add_signal_handler(sig, dumper, sig.name)
    return queue


def _hangup() -> None:
    log.warning(
        "received SIGHUP: ignored (the configuration is read once from the environment; to change it, start a new"
        " task; to stop the agent, send SIGTERM)"
    )


class _Dumper:
    """The SIGUSR1/SIGUSR2 handler: what the agent knows so far (nothing but the signal before it serves)."""

    def __init__(self) -> None:
        self.state: AgentState | None = None
        self.runner: web.AppRunner | None = None

    def __call__(self, signame: str) -> None:
        snapshot = self.state.snapshot() if self.state is not None else None
        server = self.runner.server if self.runner is not None else None
        log_state_dump(signame, snapshot, len(server.connections) if server is not None else None)


async def _grace(stop: asyncio.Queue[str], seconds: float) -> None:
    """Keep answering (`draining`) so the ALB deregisters us; a second signal ends the wait at once."""
    try:
        async with asyncio.timeout(seconds):
            signame = await stop.get()
            log.info("received %s again: stopping now", signame)
    except TimeoutError:
        pass


def _log_started(config: AgentConfig, plan: Plan, budget: DescriptorBudget) -> None:
    log.info(
        "ecs-health-agent %s listening on %s",
        __version__,
        address(config.host, config.port),
        extra={
            "probes": _probes_by_target(plan),
            "interval_seconds": config.interval_seconds,
            "open_files_limit": budget.soft,
            "max_connections": budget.max_connections,
        },
    )


def _probes_by_target(plan: Plan) -> dict[str, list[str]]:
    """{target: [probe, ...]}: a "secret:writer" key would read as a key=value secret and be redacted."""
    grouped: dict[str, list[str]] = {}
    for planned in plan.probes:
        grouped.setdefault(planned.probe.target, []).append(planned.probe.name)
    return grouped
