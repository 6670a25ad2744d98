"""The scheduler: dependency order on the first round, one loop per probe, single flight, unblocking."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ClassVar

import pytest

from agent.config.models import AgentConfig
from agent.probes.base import Details
from agent.runtime import scheduler as scheduler_module
from agent.runtime.plan import Plan, PlannedProbe
from agent.runtime.scheduler import Scheduler, confirm_delay
from agent.runtime.state import AgentState
from agent.shared.reasons import Failure, ProbeFailure, Reason, Scope
from tests.support.aws import make_target


class ScriptedProbe:
    """A probe whose outcomes follow a script (True = pass); records how often and how concurrently it ran."""

    name: ClassVar[str] = "scripted"
    failure_scope: ClassVar[Scope | None] = None

    def __init__(self, name: str, target: str, script: Callable[[int], bool], seconds: float = 0.0) -> None:
        self.name = name  # type: ignore[misc]
        self.target = target
        self.step = "scripted"
        self.script = script
        self.seconds = seconds
        self.runs = 0
        self.running = 0
        self.max_running = 0

    async def run(self) -> Details:
        self.runs += 1
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            await asyncio.sleep(self.seconds)
            if not self.script(self.runs):
                raise ProbeFailure(Reason.NETWORK, f"{self.name}:scripted", "scripted failure")
            return {}
        finally:
            self.running -= 1

    def classify(self, exc: BaseException) -> Failure | None:
        return None

    def hint(self, failure: Failure) -> str:
        return ""


def config(interval: float) -> AgentConfig:
    return AgentConfig(targets=(make_target(name="default"),), interval_seconds=interval, timeout_seconds=1.0)


async def run_for(plan: Plan, cfg: AgentConfig, seconds: float) -> AgentState:
    state = AgentState(cfg, [(p.probe.name, p.probe.target) for p in plan.probes])
    scheduler = Scheduler(plan, state, cfg)
    scheduler.start()
    await asyncio.sleep(seconds)
    await scheduler.stop()
    return state


async def test_a_dependent_probe_runs_once_its_dependency_recovers() -> None:
    credentials = ScriptedProbe("credentials", "aws", lambda n: n > 2)  # fails twice, then passes
    secret = ScriptedProbe("secret", "default", lambda n: True)
    plan = Plan((PlannedProbe(credentials), PlannedProbe(secret, ("credentials:aws",))), {})
    state = await run_for(plan, config(0.1), 1.0)
    view = {p.probe: p for p in state.snapshot().probes}
    assert secret.runs >= 3, "the secret probe must run once credentials pass"
    assert view["secret"].last is not None and view["secret"].last.ok
    assert view["credentials"].last is not None and view["credentials"].last.ok
    assert state.snapshot().status == "ready"


async def test_never_two_runs_of_one_probe_at_once() -> None:
    """A probe slower than the interval is not started again while it runs."""
    slow = ScriptedProbe("db", "default", lambda n: True, seconds=0.15)
    state = await run_for(Plan((PlannedProbe(slow),), {}), config(0.1), 1.0)
    assert slow.max_running == 1
    assert 3 <= slow.runs <= 8
    assert state.snapshot().status == "ready"


async def test_first_round_runs_in_dependency_order() -> None:
    order: list[str] = []

    def recorder(name: str) -> Callable[[int], bool]:
        def script(n: int) -> bool:
            order.append(name)
            return True

        return script

    probes = [ScriptedProbe(n, t, recorder(n), seconds=0.02) for n, t in [("credentials", "aws"), ("secret", "x")]]
    probes.append(ScriptedProbe("db", "x", recorder("db")))
    plan = Plan(
        (
            PlannedProbe(probes[0]),
            PlannedProbe(probes[1], ("credentials:aws",)),
            PlannedProbe(probes[2], ("secret:x",)),
        ),
        {},
    )
    await run_for(plan, config(5.0), 0.3)
    assert order == ["credentials", "secret", "db"]


@pytest.mark.parametrize(
    ("interval", "threshold", "expected"),
    [(10.0, 3, 10 / 3), (10.0, 1, 10.0), (2.0, 3, 1.0), (0.5, 3, 0.5), (60.0, 2, 30.0)],
)
def test_confirm_delay_fits_the_threshold_in_about_one_interval(
    interval: float, threshold: int, expected: float
) -> None:
    """interval / threshold, floored at 1 s and never above the interval."""
    assert confirm_delay(interval, threshold) == pytest.approx(expected)


async def test_a_new_failure_is_confirmed_sooner_than_the_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a first failure the confirming runs come at interval/threshold; once counted, the interval again."""
    monkeypatch.setattr(scheduler_module, "CONFIRM_FLOOR_SECONDS", 0.05)
    down = ScriptedProbe("db", "default", lambda n: False)
    cfg = AgentConfig(targets=(make_target(name="default"),), interval_seconds=1.2, timeout_seconds=1.0)
    state = AgentState(cfg, [("db", "default")])
    scheduler = Scheduler(Plan((PlannedProbe(down),), {}), state, cfg)
    scheduler.start()
    try:
        await asyncio.sleep(1.0)  # confirmations at ~0.4 s and ~0.8 s: counted before one interval passed
        assert down.runs == 3
        (view,) = state.snapshot().probes
        assert view.failing and state.snapshot().status == "starting"
        await asyncio.sleep(0.8)  # counted: back to the 1.2 s interval (next run at >= 1.9 s)
        assert down.runs == 3
    finally:
        await scheduler.stop()


async def test_wake_runs_the_probe_at_once() -> None:
    """A probe that sets its wake event (a kept connection closed) runs now, not at the next interval."""
    probe = ScriptedProbe("db", "default", lambda n: True)
    wake = asyncio.Event()
    cfg = config(30.0)
    state = AgentState(cfg, [("db", "default")])
    scheduler = Scheduler(Plan((PlannedProbe(probe, wake=wake),), {}), state, cfg)
    scheduler.start()
    try:
        await asyncio.sleep(0.2)
        assert probe.runs == 1  # the first round; the next run is ~30 s away
        wake.set()
        await asyncio.sleep(0.2)
        assert probe.runs == 2
    finally:
        await scheduler.stop()


async def test_heartbeat_ticks_during_a_long_first_round() -> None:
    """/health must not read `stalled` while the first round is still running (a hung first login)."""
    slow = ScriptedProbe("db", "default", lambda n: True, seconds=1.5)
    cfg = AgentConfig(targets=(make_target(name="default"),), interval_seconds=0.1, timeout_seconds=5.0)
    state = AgentState(cfg, [("db", "default")], stall_floor_seconds=0.5)
    scheduler = Scheduler(Plan((PlannedProbe(slow),), {}), state, cfg)
    scheduler.start()
    try:
        await asyncio.sleep(1.2)  # past the 0.5 s stall window, first round still running
        assert slow.runs == 1 and slow.running == 1
        assert not state.stalled()
    finally:
        await scheduler.stop()
