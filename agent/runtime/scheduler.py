"""Runs probes on their cadence: one loop per probe (never two runs of one probe at once), with jitter."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Iterable

from agent.config.models import AgentConfig
from agent.probes.base import ProbeResult
from agent.probes.runner import run_probe
from agent.runtime.drain import Drain
from agent.runtime.plan import Mode, Plan, PlannedProbe, blocker, probe_key
from agent.runtime.rounds import close_probes, not_run, run_round
from agent.runtime.state import AgentState

log = logging.getLogger(__name__)

JITTER = 0.1  # +-10 % of the interval, so a fleet started together does not probe in lock-step
HEARTBEAT_SECONDS = 1.0
CONFIRM_FLOOR_SECONDS = 1.0  # confirmations of a new failure never come faster than this

Observer = Callable[[ProbeResult], None]  # told of every result after the state; must not block or do I/O


def confirm_delay(interval: float, failure_threshold: int) -> float:
    """Seconds between the runs that confirm a new failure: the threshold's runs fit in about one interval.

    With the defaults (10 s, threshold 3) a failure is counted ~6.7 s after the first failed run instead of ~20 s,
    still debounced by the threshold; never faster than CONFIRM_FLOOR_SECONDS, never slower than the interval.
    """
    return min(interval, max(CONFIRM_FLOOR_SECONDS, interval / failure_threshold))


class Scheduler:
    """Owns the probe loops; the state learns every result and a heartbeat while all loops are alive."""

    def __init__(self, plan: Plan, state: AgentState, config: AgentConfig, observers: Iterable[Observer] = ()) -> None:
        self._plan = plan
        self._state = state
        self._observers = tuple(observers)
        self._interval = config.interval_seconds
        self._confirm = confirm_delay(config.interval_seconds, config.failure_threshold)
        self._threshold = config.failure_threshold
        self._timeout = config.timeout_seconds
        self._latest: dict[str, ProbeResult] = {}
        self._streaks: dict[str, int] = {}  # consecutive failed runs per probe key
        self._tasks: list[asyncio.Task[None]] = []
        self._loops_alive = True

    def start(self) -> None:
        """Start probing in the background: a first round in dependency order, then one loop per probe.

        The heartbeat ticks from the start, so a long first round (a hung database at a long timeout) never
        reads as a stalled agent on /health.
        """
        self._tasks = [
            asyncio.create_task(self._main(), name="scheduler"),
            asyncio.create_task(self._heartbeat(), name="heartbeat"),
        ]

    async def stop(self, drain: Drain | None = None) -> None:
        """Cancel every loop, then release kept connections side by side, all within the drain's one deadline
        (see agent.runtime.drain): a run or a close that outlasts it is aborted."""
        drain = drain or Drain()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await drain.settle(tasks, "probe loops")
        await close_probes(self._plan, drain)

    async def _heartbeat(self) -> None:
        while self._loops_alive:
            self._state.heartbeat()
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def _main(self) -> None:
        try:
            await run_round(self._plan, self._timeout, Mode.SERVE, self._record)
            loops = [asyncio.create_task(self._loop(p), name=f"probe {p.key}") for p in self._plan.probes]
            self._tasks.extend(loops)
            if loops:
                await asyncio.wait(loops, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Here only if a loop ended (a bug, not a probe failure) or the first round raised: stop the heartbeat
            # so /health says "stalled" and ECS replaces the container, and say why in the log.
            self._loops_alive = False
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("probe loop %s died: %r", task.get_name(), task.exception())

    async def _loop(self, planned: PlannedProbe) -> None:
        await self._sleep(planned, self._next_delay(0.0, self._cadence(planned.key)))
        while True:
            started = asyncio.get_running_loop().time()
            failed = blocker(planned, self._latest, Mode.SERVE)
            if failed is not None:
                result = not_run(planned, failed)
            else:
                result = await run_probe(planned.probe, self._timeout)
            self._record(result)
            elapsed = asyncio.get_running_loop().time() - started
            await self._sleep(planned, self._next_delay(elapsed, self._cadence(planned.key)))

    async def _sleep(self, planned: PlannedProbe, seconds: float) -> None:
        """Sleep until the next run, or less if the probe asks to run now (a kept connection was closed)."""
        if planned.wake is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await planned.wake.wait()
        planned.wake.clear()

    def _record(self, result: ProbeResult) -> None:
        key = probe_key(result.probe, result.target)
        self._latest[key] = result
        self._streaks[key] = 0 if result.ok else self._streaks.get(key, 0) + 1
        self._state.record(result)
        for observe in self._observers:  # after the state, so an observer sees the status this result left
            observe(result)

    def _cadence(self, key: str) -> float:
        """The full interval, or the quicker confirm delay while a new failure is not yet counted."""
        streak = self._streaks.get(key, 0)
        return self._confirm if 0 < streak < self._threshold else self._interval

    def _next_delay(self, elapsed: float, period: float) -> float:
        jitter = random.uniform(-JITTER, JITTER) * period
        return max(0.0, period - elapsed + jitter)
