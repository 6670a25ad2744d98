"""`serve`: owns start-up, the probe scheduler, the HTTP server, signals and the graceful drain."""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import AsyncExitStack

from agent import __version__
from agent.config.models import AgentConfig
from agent.outputs.events import ChangeLog
from agent.outputs.logs import setup_logging
from agent.outputs.server import create_app, start_server
from agent.runtime.drain import Drain
from agent.runtime.plan import Mode, Plan, build_plan
from agent.runtime.scheduler import Observer, Scheduler
from agent.runtime.state import AgentState

log = logging.getLogger("agent")

EXIT_OK, EXIT_CANNOT_LISTEN = 0, 1


async def serve(config: AgentConfig) -> int:
    """Run until SIGTERM/SIGINT, then drain: /ready says `draining` for the grace period, then exit 0."""
    setup_logging(config.log_level)
    stop = _install_signal_handlers()
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
            runner = await start_server(create_app(state, config), config.host, config.port)
        except OSError as exc:
            log.error("cannot listen on %s:%s: %s", config.host, config.port, exc.strerror or exc)
            return EXIT_CANNOT_LISTEN
        stack.push_async_callback(drain.step, "stopping the HTTP server", runner.cleanup)
        changes = ChangeLog(state)
        scheduler = Scheduler(plan, state, config, [changes.observe, *_emf_observers(config, state, stack, drain)])
        scheduler.start()
        stack.push_async_callback(scheduler.stop, drain)
        _log_started(config, plan)
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


def _install_signal_handlers() -> asyncio.Queue[str]:
    queue: asyncio.Queue[str] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, queue.put_nowait, sig.name)
    return queue


async def _grace(stop: asyncio.Queue[str], seconds: float) -> None:
    """Keep answering (`draining`) so the ALB deregisters us; a second signal ends the wait at once."""
    try:
        async with asyncio.timeout(seconds):
            signame = await stop.get()
            log.info("received %s again: stopping now", signame)
    except TimeoutError:
        pass


def _log_started(config: AgentConfig, plan: Plan) -> None:
    log.info(
        "ecs-health-agent %s listening on %s:%s",
        __version__,
        config.host,
        config.port,
        extra={"probes": _probes_by_target(plan), "interval_seconds": config.interval_seconds},
    )


def _probes_by_target(plan: Plan) -> dict[str, list[str]]:
    """{target: [probe, ...]}: a "secret:writer" key would read as a key=value secret and be redacted."""
    grouped: dict[str, list[str]] = {}
    for planned in plan.probes:
        grouped.setdefault(planned.probe.target, []).append(planned.probe.name)
    return grouped
