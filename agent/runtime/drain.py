"""The shutdown's one deadline, after the grace: every step (probe loops, kept connections, the HTTP server, the
AWS clients) shares it, runs side by side where it can, and whatever has not finished by then is aborted.

ECS sends SIGKILL `stopTimeout` seconds after SIGTERM (30 s by default, "Amazon ECS task definition parameters:
stopTimeout"). The agent spends AGENT_SHUTDOWN_GRACE_SECONDS answering `draining`, then at most DRAIN_SECONDS
closing, so the whole shutdown stays within the grace plus 2 s whatever the number of targets or the state of the
network: a close that gets no answer is cancelled, and a cancelled close drops its socket (the drivers' close()
aborts the transport when cancelled: asyncpg's Connection.close, our mysql close).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable
from typing import Any

log = logging.getLogger(__name__)

DRAIN_SECONDS = 1.0  # polite closes get this long, all together
ABORT_SECONDS = 0.5  # then what was cancelled gets this long to drop its sockets; 0.5 s is left for the exit


class Drain:
    """One deadline for every step of a shutdown; the clock starts when the first step does."""

    def __init__(self, seconds: float = DRAIN_SECONDS, abort_seconds: float = ABORT_SECONDS) -> None:
        self.seconds = seconds
        self.abort_seconds = abort_seconds
        self._deadline: float | None = None

    @property
    def deadline(self) -> float:
        """Loop time by which every polite close must be done."""
        if self._deadline is None:
            self._deadline = asyncio.get_running_loop().time() + self.seconds
        return self._deadline

    async def step(self, name: str, close: Callable[[], Awaitable[None]]) -> None:
        """Run one step of the shutdown (`name` for the log) within the deadline; past it, it is cancelled."""

        async def run() -> None:
            await close()

        await self.settle([asyncio.create_task(run(), name=name)], name)

    async def settle(self, tasks: Collection[asyncio.Task[Any]], what: str) -> None:
        """Wait for `tasks` until the deadline, then cancel the rest and give them until the deadline plus
        abort_seconds to unwind. Never raises; what was cut short is logged."""
        if not tasks:
            return
        loop = asyncio.get_running_loop()
        _, late = await asyncio.wait(tasks, timeout=max(0.0, self.deadline - loop.time()))
        if late:
            for task in late:
                task.cancel()
            count = f"{len(late)} of {len(tasks)}"
            log.warning("shutdown: %s %s did not finish within %gs: aborted", count, what, self.seconds)
            unwind = self.deadline + self.abort_seconds - loop.time()
            _, stuck = await asyncio.wait(late, timeout=max(0.0, unwind))
            if stuck:
                log.error("shutdown: %d %s still running after they were aborted; exiting anyway", len(stuck), what)
        _retrieve(tasks)


def _retrieve(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Read each finished task's exception: a failed close must not be reported as "never retrieved" at exit,
    and is logged here instead (a close is best effort, the process is leaving)."""
    for task in tasks:
        if task.done() and not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("shutdown: %s failed: %r", task.get_name(), exc)
