"""What a hostile-peer row measures on the agent process: its memory (VmRSS, and the peak VmHWM since a reset), and
how fast /health answers meanwhile, asked from a process of its own (health_watch.py) so that the test process's
own work (moto, the hostile peers) cannot slow the clock."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.agent_process import REPO


def memory_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process, in KiB (/proc/PID/status)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def reset_peak(pid: int) -> None:
    """Make VmHWM start again from the current RSS (proc(5): writing 5 to /proc/PID/clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


@dataclass(frozen=True, slots=True)
class Health:
    """The /health answers of a time window."""

    latencies: list[float]
    statuses: list[int]

    def p99_ms(self) -> float:
        """The 99th percentile latency in milliseconds (nearest rank); infinite without a single answer."""
        ordered = sorted(self.latencies)
        if not ordered:
            return float("inf")
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000

    def failures(self) -> int:
        return sum(1 for status in self.statuses if status != 200)


@dataclass
class HealthWatch:
    """The health_watch.py process for one agent, and every line it printed: (monotonic, seconds, status)."""

    lines: list[tuple[float, float, int]] = field(default_factory=list)

    def count(self, since: float) -> int:
        return sum(1 for at, _, _ in self.lines if at >= since)

    def window(self, since: float, until: float) -> Health:
        chosen = [(took, status) for at, took, status in self.lines if since <= at <= until]
        return Health([took for took, _ in chosen], [status for _, status in chosen])

    async def read(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            at, took, status = line.split()
            self.lines.append((float(at), float(took), int(status)))


@contextlib.asynccontextmanager
async def watching(port: int) -> AsyncIterator[HealthWatch]:
    """Ask the agent on `port` for /health about 100 times a second for as long as the block runs."""
    watch = HealthWatch()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.faults.hostile.health_watch", str(port),
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stdout is not None
    reader = asyncio.create_task(watch.read(process.stdout))
    try:
        yield watch
    finally:
        process.terminate()
        await process.wait()
        await reader
