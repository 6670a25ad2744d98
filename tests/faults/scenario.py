"""One fault against a running agent: inject, watch it be classified, clear, watch it recover; one matrix row.

What every row checks: the expected probe, reason and code; /ready's status and HTTP code per the policy;
/health 200 in every sample from the injection to the recovery; `ready` again within the recovery bound once
the fault is cleared; and no growth in the agent's file descriptors or server-side sessions afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tests.faults.harness import LiveAgent, Sample
from tests.faults.matrix import Row, record

HTTP_OK = {"ready": 200, "degraded": 200, "starting": 503, "not_ready": 503, "draining": 503}
Action = Callable[[], Awaitable[object]]
Count = Callable[[], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class Expect:
    """How a fault must show: the failing probe, its reason and stable code, and the overall status."""

    probe: str
    target: str
    reason: str
    codes: tuple[str, ...]  # any of these (a driver may word one fault two ways)
    status: str
    scope: str | None = None  # "task" or "shared" when the row is about scope

    def text(self) -> str:
        scope = f" {self.scope}" if self.scope else ""
        return f"{self.probe}:{self.target} {self.reason}{scope} {' or '.join(self.codes)} -> {self.status} "

    def label(self) -> str:
        return self.text() + f"({HTTP_OK[self.status]})"

    def matches(self, sample: Sample) -> bool:
        counted = (self.probe, self.target, self.reason) in sample.failing
        entry = sample.probes.get((self.probe, self.target), {})
        scoped = self.scope is None or entry.get("scope") == self.scope
        return (
            sample.status == self.status and counted and scoped and sample.code(self.probe, self.target) in self.codes
        )


@dataclass(frozen=True, slots=True)
class Bounds:
    """How long detection and recovery may take (seconds), derived from the agent's cadence by the caller."""

    detect: float
    recover: float


@dataclass(frozen=True, slots=True)
class Leaks:
    """How to count what the agent holds: its server-side sessions (None: do not check)."""

    sessions: Count | None = None
    max_sessions: int = 2  # the kept connection, plus one login in flight while it is replaced


async def run_fault(
    agent: LiveAgent,
    fault: str,
    expect: Expect,
    inject: Action,
    clear: Action,
    bounds: Bounds,
    leaks: Leaks = Leaks(),
    never_503: bool = False,
) -> Row:
    """Inject a fault, wait for `expect`, clear it, wait for `ready`; record and return the matrix row.

    With `never_503` (a shared failure), every sample from the injection to the recovery must answer 200.
    """
    await agent.wait_status("ready", 20)
    fds_before = agent.fds()
    watcher = _SessionWatch(leaks.sessions)
    detection = recovery = None
    observed = "not observed"
    problems: list[str] = []
    started = time.monotonic()
    try:
        async with watcher:
            in_place = started
            try:  # whatever happens from here on, the fault is cleared for the next row
                await inject()
                in_place = time.monotonic()
                hit = await agent.wait_for(expect.matches, bounds.detect, after=in_place)
                detection = hit.at - in_place
                observed = _observed(hit, expect)
                if hit.ready_http != HTTP_OK[expect.status]:
                    problems.append(f"/ready answered {hit.ready_http} with status {hit.status}")
            except AssertionError as exc:
                observed = _last(agent, in_place)
                problems.append(str(exc))
            finally:
                await clear()
            cleared = time.monotonic()
            recovery = await _recovery(agent, cleared, bounds.recover, problems)
        if never_503:
            problems += _ready_gaps(agent, started)
        problems += _health_gaps(agent, started)
        problems += await _leak_check(agent, fds_before, watcher, leaks)
    finally:
        note = f"fds {fds_before}->{_safe_fds(agent)}" + watcher.note()
        row = Row(fault, expect.label(), observed, detection, recovery, not problems, note, agent.name)
        record(row)
    assert not problems, f"{fault}: " + "; ".join(problems)
    return row


async def run_masked(
    agent: LiveAgent,
    fault: str,
    expected: str,
    inject: Action,
    proof: Callable[[], Awaitable[str | None]],
    window: float,
    leaks: Leaks = Leaks(),
) -> Row:
    """A fault the agent absorbs without a failure (a killed kept connection, a rotation in the right order).

    `proof` is polled until it returns a description of the evidence that the fault happened and was handled
    (e.g. "new session pid"); every sample meanwhile must be `ready`, with /health 200.
    """
    await agent.wait_status("ready", 20)
    fds_before = agent.fds()
    watcher = _SessionWatch(leaks.sessions)
    problems: list[str] = []
    observed = "no evidence the fault was handled"
    handled = None
    started = time.monotonic()
    try:
        async with watcher:
            await inject()
            in_place = time.monotonic()
            deadline = in_place + window
            while time.monotonic() < deadline:
                evidence = await proof()
                if evidence is not None:
                    handled, observed = time.monotonic() - in_place, evidence
                    break
                await asyncio.sleep(0.05)
            else:
                problems.append(f"no evidence within {window}s")
            await asyncio.sleep(1.0)  # a failure the fault caused late would show now
        bad = [s for s in agent.samples_since(started) if s.status != "ready"]
        if bad:
            problems.append(f"{len(bad)} samples not ready, first: {bad[0].describe()}")
        else:
            observed += "; ready throughout"
        problems += _health_gaps(agent, started)
        problems += await _leak_check(agent, fds_before, watcher, leaks)
    finally:
        note = f"fds {fds_before}->{_safe_fds(agent)}" + watcher.note()
        row = Row(fault, expected, observed, None, handled, not problems, note, agent.name)
        record(row)
    assert not problems, f"{fault}: " + "; ".join(problems)
    return row


def record_static(agent: LiveAgent, fault: str, expect: Expect, sample: Sample | None, problems: list[str]) -> None:
    """A row for a fault present from the start (a misconfiguration): nothing to clear, so no recovery time."""
    observed = _observed(sample, expect) if sample is not None else "not observed"
    record(Row(fault, expect.label(), observed, None, None, not problems, "present from start-up", agent.name))


def _observed(sample: Sample, expect: Expect) -> str:
    entry = sample.probes.get((expect.probe, expect.target), {})
    verdict = f"{sample.status} ({sample.ready_http})"
    scope = f" {entry.get('scope')}" if expect.scope else ""
    return f"{expect.probe}:{expect.target} {entry.get('reason')}{scope} {entry.get('code')} -> {verdict}"


def _last(agent: LiveAgent, since: float) -> str:
    samples = agent.samples_since(since)
    return samples[-1].describe() if samples else "no sample"


async def _recovery(agent: LiveAgent, cleared: float, bound: float, problems: list[str]) -> float | None:
    try:  # wait longer than the bound, so a slow recovery is measured rather than only reported missing
        back = await agent.wait_status("ready", bound * 3, after=cleared)
    except AssertionError as exc:
        problems.append(f"no recovery: {exc}")
        return None
    took = back.at - cleared
    if took > bound:
        problems.append(f"recovered in {took:.2f}s, bound {bound:.2f}s")
    return took


def _ready_gaps(agent: LiveAgent, since: float) -> list[str]:
    bad = [s for s in agent.samples_since(since) if s.ready_http != 200]
    return [f"/ready answered {bad[0].ready_http} ({bad[0].describe()}) in {len(bad)} samples"] if bad else []


def _health_gaps(agent: LiveAgent, since: float) -> list[str]:
    samples = agent.samples_since(since)
    bad = [s for s in samples if s.health_http != 200]
    if not samples:
        return ["no samples at all"]
    return [f"/health answered {bad[0].health_http} in {len(bad)} of {len(samples)} samples"] if bad else []


async def _leak_check(agent: LiveAgent, fds_before: int, watcher: _SessionWatch, leaks: Leaks) -> list[str]:
    problems = []
    settled = await _settle(agent.fds, lambda n: n <= fds_before + 1)
    if settled > fds_before + 1:
        problems.append(f"file descriptors {fds_before} -> {settled}")
    if watcher.peak > leaks.max_sessions:
        problems.append(f"{watcher.peak} server sessions at once (bound {leaks.max_sessions})")
    if leaks.sessions is not None:
        sessions = leaks.sessions
        now = await _settle_async(sessions, lambda n: n <= 1)
        if now > 1:
            problems.append(f"{now} server sessions after recovery (expected the one kept connection)")
    return problems


async def _settle(count: Callable[[], int], good: Callable[[int], bool], seconds: float = 3.0) -> int:
    deadline = time.monotonic() + seconds
    value = count()
    while not good(value) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        value = count()
    return value


async def _settle_async(count: Count, good: Callable[[int], bool], seconds: float = 3.0) -> int:
    deadline = time.monotonic() + seconds
    value = await count()
    while not good(value) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        value = await count()
    return value


def _safe_fds(agent: LiveAgent) -> str:
    try:
        return str(agent.fds())
    except OSError:
        return "?"


class _SessionWatch:
    """Counts the agent's server-side sessions every 0.1 s while a fault runs, keeping the peak."""

    def __init__(self, count: Count | None) -> None:
        self._count = count
        self.peak = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _SessionWatch:
        if self._count is not None:
            self._task = asyncio.create_task(self._watch())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self) -> None:
        assert self._count is not None
        while True:
            with contextlib.suppress(Exception):
                self.peak = max(self.peak, await self._count())
            await asyncio.sleep(0.1)

    def note(self) -> str:
        return f", server sessions peak {self.peak}" if self._count is not None else ""
