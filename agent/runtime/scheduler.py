"""Runs probes on their cadence: one loop per probe (never two runs of one probe at once), with jitter."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable

from agent.config.models import AgentConfig
from agent.probes.base import ProbeResult
from agent.probes.runner import run_probe
from agent.runtime.plan import Mode, Plan, PlannedProbe, blocker, probe_key
from agent.runtime.rounds import close_probes, not_run, run_round
from agent.runtime.state import AgentState

log = logging.getLogger(__name__)

JITTER = 0.1  # +-10 % of the interval, so a fleet started together does not probe in lock-step
HEARTBEAT_SECONDS = 1.0

Observer = Callable[[ProbeResult], None]  # told of every result after the state; must not block or do I/O


class Scheduler:
    """Owns the probe loops; the state learns every result and a heartbeat while all loops are alive."""

    def __init__(self, plan: Plan, state: AgentState, config: AgentConfig, observers: Iterable[Observer] = ()) -> None:
        self._plan = plan
        self._state = state
        self._observers = tuple(observers)
        self._interval = config.interval_seconds
        self._timeout = config.timeout_seconds
        self._latest: dict[str, ProbeResult] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start probing in the background: a first round in dependency order, then one loop per probe."""
        self._tasks = [asyncio.create_task(self._main(), name="scheduler")]

    async def stop(self) -> None:
        """Cancel every loop, wait for them, and release kept connections."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await close_probes(self._plan)

    async def _main(self) -> None:
        self._latest = await run_round(self._plan, self._timeout, Mode.SERVE, self._record)
        loops = [asyncio.create_task(self._loop(p), name=f"probe {p.key}") for p in self._plan.probes]
        self._tasks.extend(loops)
        while all(not t.done() for t in loops):
            self._state.heartbeat()
            await asyncio.sleep(HEARTBEAT_SECONDS)
        # A loop ended: that is a bug, not a probe failure. Stop the heartbeat so /health says "stalled"
        # and ECS replaces the container, and say why in the log.
        for task in loops:
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("probe loop %s died: %r", task.get_name(), task.exception())

    async def _loop(self, planned: PlannedProbe) -> None:
        await asyncio.sleep(self._next_delay(0.0))
        while True:
            started = asyncio.get_running_loop().time()
            failed = blocker(planned, self._latest, Mode.SERVE)
            if failed is not None:
                result = not_run(planned, failed)
            else:
                result = await run_probe(planned.probe, self._timeout)
            self._record(result)
            await asyncio.sleep(self._next_delay(asyncio.get_running_loop().time() - started))

    def _record(self, result: ProbeResult) -> None:
        self._latest[probe_key(result.probe, result.target)] = result
        self._state.record(result)
        for observe in self._observers:  # after the state, so an observer sees the status this result left
            observe(result)

    def _next_delay(self, elapsed: float) -> float:
        jitter = random.uniform(-JITTER, JITTER) * self._interval
        return max(0.0, self._interval - elapsed + jitter)
