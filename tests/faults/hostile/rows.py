"""One row of the hostile-peer suite: turn a peer hostile in front of a live agent, watch its probe fail, measure.

Checked for every row (issue 12): the probe fails with the expected reason and code, within its timeout plus 1 s
(the failing run's last_duration_ms); /health answers 200 throughout with a p99 under 50 ms; the agent's RSS peaks
at most 32 MiB above the baseline (VmHWM, reset just before) and is back within 8 MiB of it once the peer is itself
again. The canary and SIGTERM are checked per agent (tests/faults/harness.py live_agent; the suite's last tests).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from tests.faults import matrix
from tests.faults.cadence import TIMEOUT
from tests.faults.harness import LiveAgent, Sample
from tests.faults.hostile.answers import BUILDERS, Peer
from tests.faults.hostile.measure import Health, HealthWatch, memory_kib, reset_peak
from tests.faults.hostile.wire import Hostility
from tests.support.hostile_peer import HostilePeer

MIB = 1024  # KiB
PEAK_BOUND_KIB = 32 * MIB
RETURN_BOUND_KIB = 8 * MIB
HEALTH_P99_MS = 50.0
FAIL_BOUND_MS = (TIMEOUT + 1.0) * 1000
DETECT_WITHIN = 10.0  # seconds for the expected failure to show at all (a kept connection, a secret's refresh)
HOLD = 0.4  # seconds the peer stays hostile once the failure showed: more runs meet it, memory may pile up
RECOVER_WITHIN = 15.0
SETTLE_WITHIN = 3.0  # seconds for RSS to come back
HEALTH_SAMPLES = 100  # /health answers a row's p99 is taken over at least (the window is stretched to get them)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a row must fail: the reason and any of the codes."""

    reason: str
    codes: tuple[str, ...]

    def text(self) -> str:
        return f"{self.reason} {' or '.join(self.codes)}"


@dataclass(frozen=True, slots=True)
class Spot:
    """Where a hostile peer sits: in front of which agent, on which probe's way, knowing which canary."""

    agent: LiveAgent
    front: HostilePeer
    probe: str
    target: str
    canary: str
    health: HealthWatch  # the agent's /health, asked from a process of its own


@dataclass
class Row:
    """One peer with one hostility, as expected and as measured."""

    peer: Peer
    hostility: Hostility
    expected: Outcome
    reason: str = "-"
    code: str = "-"
    fail_ms: float | None = None  # the failing run's duration
    base_kib: int = 0
    peak_kib: int = 0
    after_kib: int = 0
    health_p99_ms: float = 0.0
    health_requests: int = 0
    offered: int = 0  # the most bytes the peer got onto one connection (socket buffers included)
    problems: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return (self.peer.value, self.hostility.value)


ROWS: list[Row] = []


async def run_row(spot: Spot, peer: Peer, hostility: Hostility, expected: Outcome) -> Row:
    """Run one row and record it (here and in the fault matrix); fail the test with every problem found."""
    row = Row(peer, hostility, expected)
    pid = spot.agent.pid
    await _wait_ok(spot, RECOVER_WITHIN, 0.0, row)
    row.base_kib = await _baseline(pid)
    await asyncio.to_thread(reset_peak, pid)
    started = time.monotonic()
    offered_before = len(spot.front.sent)
    try:
        turned = time.monotonic()
        await asyncio.to_thread(spot.front.turn, BUILDERS[peer](hostility, spot.canary))
        await _wait_failure(spot, row, turned)
        await asyncio.sleep(HOLD)
        row.peak_kib = (await asyncio.to_thread(memory_kib, pid))[1]
    finally:
        await asyncio.to_thread(spot.front.forward)
    await _wait_ok(spot, RECOVER_WITHIN, time.monotonic(), row)
    row.after_kib = await _settled(pid, row.base_kib + RETURN_BOUND_KIB)
    await _enough_answers(spot.health, started)
    ended = time.monotonic()
    await asyncio.sleep(0.1)  # the watcher's last lines of the window are on their way
    health = spot.health.window(started, ended)
    row.health_p99_ms, row.health_requests = health.p99_ms(), len(health.latencies)
    row.offered = max(spot.front.sent[offered_before:], default=0)
    _judge(row, health)
    ROWS.append(row)
    _record(row, spot.agent.name)
    assert not row.problems, f"{peer} / {hostility}: " + "; ".join(row.problems)
    return row


def _entry(spot: Spot, sample: Sample) -> dict[str, object]:
    return dict(sample.probes.get((spot.probe, spot.target), {}))


async def _wait_ok(spot: Spot, timeout: float, after: float, row: Row) -> None:
    try:
        await spot.agent.wait_for(lambda s: _entry(spot, s).get("ok") is True, timeout, after=after)
    except AssertionError as exc:
        row.problems.append(f"the probe did not pass with the peer forwarding: {exc}")


async def _wait_failure(spot: Spot, row: Row, turned: float) -> None:
    codes = row.expected.codes

    def failed_as_expected(sample: Sample) -> bool:
        entry = _entry(spot, sample)
        return entry.get("ok") is False and entry.get("code") in codes

    try:
        hit = await spot.agent.wait_for(failed_as_expected, DETECT_WITHIN, after=turned)
    except AssertionError:
        last = spot.agent.samples_since(turned)
        entry = _entry(spot, last[-1]) if last else {}
        row.reason, row.code = str(entry.get("reason")), str(entry.get("code"))
        row.problems.append(f"expected {row.expected.text()}, the probe said {row.reason} {row.code}")
        return
    entry = _entry(spot, hit)
    row.reason, row.code = str(entry.get("reason")), str(entry.get("code"))
    duration = entry.get("last_duration_ms")
    row.fail_ms = float(duration) if isinstance(duration, int | float) else None


def _judge(row: Row, health: Health) -> None:
    if row.code in row.expected.codes and row.reason != row.expected.reason:
        row.problems.append(f"reason {row.reason}, expected {row.expected.reason}")
    if row.fail_ms is None or row.fail_ms > FAIL_BOUND_MS:
        row.problems.append(f"the probe took {row.fail_ms} ms to fail, bound {FAIL_BOUND_MS:.0f} ms")
    if row.peak_kib - row.base_kib > PEAK_BOUND_KIB:
        row.problems.append(f"RSS peaked {(row.peak_kib - row.base_kib) / MIB:.1f} MiB above the baseline")
    if row.after_kib - row.base_kib > RETURN_BOUND_KIB:
        row.problems.append(f"RSS stayed {(row.after_kib - row.base_kib) / MIB:.1f} MiB above the baseline")
    if health.failures():
        row.problems.append(f"/health failed {health.failures()} of {len(health.statuses)} times")
    if row.health_p99_ms >= HEALTH_P99_MS:
        row.problems.append(f"/health p99 {row.health_p99_ms:.1f} ms over {len(health.latencies)} requests")


async def _baseline(pid: int) -> int:
    """The agent's RSS at rest: the lowest of a few readings (a run in flight lifts one)."""
    readings = []
    for _ in range(3):
        readings.append((await asyncio.to_thread(memory_kib, pid))[0])
        await asyncio.sleep(0.05)
    return min(readings)


async def _settled(pid: int, good: int) -> int:
    """RSS once at or under `good` (KiB), or the last reading after SETTLE_WITHIN seconds."""
    deadline = time.monotonic() + SETTLE_WITHIN
    while True:
        rss = (await asyncio.to_thread(memory_kib, pid))[0]
        if rss <= good or time.monotonic() > deadline:
            return rss
        await asyncio.sleep(0.1)


async def _enough_answers(health: HealthWatch, since: float) -> None:
    """Wait (at most 3 s) until the window holds HEALTH_SAMPLES answers: a p99 of a few dozen is their maximum."""
    deadline = time.monotonic() + 3.0
    while health.count(since) < HEALTH_SAMPLES and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


def _record(row: Row, group: str) -> None:
    """The row in the fault matrix printed at the end of the run, too."""
    observed = f"{row.reason} {row.code} after {_ms(row.fail_ms)}; RSS {_mib(row.peak_kib - row.base_kib)} peak"
    fault = f"hostile {row.peer} ({row.hostility})"
    note = f"/health p99 {row.health_p99_ms:.1f} ms of {row.health_requests}"
    matrix.record(matrix.Row(fault, row.expected.text(), observed, None, None, not row.problems, note, group))


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _mib(kib: int) -> str:
    return f"{kib / MIB:+.1f} MiB"
