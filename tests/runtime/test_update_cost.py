"""Recording a result costs the same at 10 and at 3,000 targets: the readiness verdict is kept by a tally that
says exactly what the policy (decide()) says, and the snapshot is put together only when read."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import agent
from agent.config.models import ReadinessPolicy
from agent.outputs.events import ChangeLog
from agent.probes.base import ProbeResult
from agent.runtime.readiness import Standing, Standings, decide
from agent.runtime.state import AgentState
from agent.shared.reasons import Reason, Scope
from tests.support.results import failed, make_config, passed

AGENT_DIR = str(Path(agent.__file__).parent)
KEYS = [("db", "a"), ("db", "b"), ("app", "a"), ("credentials", "aws")]


@contextmanager
def agent_lines() -> Iterator[list[int]]:
    """Count the lines of agent/ code run inside the block (comprehensions and generators included)."""
    count = [0]

    def trace(frame: FrameType, event: str, _arg: Any) -> Callable[..., Any] | None:
        if not frame.f_code.co_filename.startswith(AGENT_DIR):
            return None
        if event == "line":
            count[0] += 1
        return trace

    previous = sys.gettrace()  # coverage's tracer, when the suite runs under it
    sys.settrace(trace)
    try:
        yield count
    finally:
        sys.settrace(previous)


def _ready_state(targets: int) -> tuple[AgentState, ChangeLog]:
    pairs = [("db", f"t{i}") for i in range(targets)]
    state = AgentState(make_config(failure_threshold=2), pairs)
    changes = ChangeLog(state)
    for probe, target in pairs:
        state.record(passed(probe, target))
        changes.observe(passed(probe, target))
    state.snapshot()  # as /status would: every view built once
    return state, changes


def _lines_per_update(targets: int) -> list[int]:
    """Lines run for each result of one target's outage and recovery, with the change log observing and /ready
    read after each, in a state that holds `targets` targets."""
    state, changes = _ready_state(targets)
    runs = [failed("db", "t1"), failed("db", "t1"), failed("db", "t1"), passed("db", "t1"), passed("db", "t1")]
    counts = []
    for result in runs:
        with agent_lines() as lines:
            state.record(result)
            changes.observe(result)
            state.readiness()
        counts.append(lines[0])
    assert state.status().value == "ready"
    return counts


def test_one_result_runs_the_same_lines_at_10_and_at_3000_targets() -> None:
    """Recording, the change log (including the not_ready and back status lines) and /ready's verdict: not one
    line more per result at 3,000 targets than at 10."""
    small, large = _lines_per_update(10), _lines_per_update(3000)
    assert large == small, (small, large)
    assert max(small) < 400  # and it is small: no pass over the targets hides in both


def test_a_snapshot_reuses_the_views_of_probes_that_did_not_change() -> None:
    """After one result, the next snapshot rebuilds that probe's view only; the others are the same objects."""
    state, _ = _ready_state(50)
    before = state.snapshot()
    state.record(failed("db", "t7"))
    after = state.snapshot()
    assert state.snapshot() is after
    changed = [i for i, (old, new) in enumerate(zip(before.probes, after.probes, strict=True)) if old is not new]
    assert changed == [7]
    assert after.probes[7].consecutive_failures == 1


def test_the_change_log_reads_no_snapshot(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Per-result observers use the state's constant-time reads: none of them builds the snapshot, not even
    for the status lines (ready -> not_ready -> ready)."""
    state, changes = _ready_state(20)

    def no_snapshot() -> None:
        raise AssertionError("an observer built the snapshot")

    monkeypatch.setattr(state, "snapshot", no_snapshot)
    with caplog.at_level(logging.INFO, logger="agent.state"):
        for result in (failed("db", "t3"), failed("db", "t3"), passed("db", "t3")):
            state.record(result)
            changes.observe(result)
    statuses = [r.getMessage() for r in caplog.records if r.getMessage().startswith("status")]
    assert statuses == ["status ready -> not_ready", "status not_ready -> ready"]


_RUNS = st.sampled_from([("ok", None, None), *[("fail", r, s) for r in Reason for s in (None, *Scope)]])
_STEPS = st.lists(
    st.tuples(st.sampled_from(KEYS), st.booleans(), st.booleans(), st.booleans(), _RUNS), min_size=1, max_size=60
)


@settings(max_examples=300, deadline=None)
@given(steps=_STEPS, policy=st.sampled_from(list(ReadinessPolicy)), draining=st.booleans())
def test_the_tally_says_what_the_policy_says(
    steps: list[tuple[tuple[str, str], bool, bool, bool, tuple[str, Reason | None, Scope | None]]],
    policy: ReadinessPolicy,
    draining: bool,
) -> None:
    """Any sequence of standings: after every put, Standings' verdict equals decide() over the latest standings
    in registration order (status, HTTP code and the failing list)."""
    standings = Standings()
    latest: dict[tuple[str, str], Standing] = {}
    for (probe, target), passed_once, failing, critical, (_, reason, scope) in steps:
        standing = Standing(probe, target, passed_once, failing, reason, scope, critical)
        standings.put(standing)
        latest[(probe, target)] = standing
        assert standings.verdict(policy, draining) == decide(latest.values(), policy, draining)


def test_an_unexpected_pair_is_counted_from_its_first_result() -> None:
    """A pair registered by its result (not expected at start) holds up `starting` like an expected one."""
    state = AgentState(make_config(), [("db", "writer")])
    state.record(passed())
    assert state.status().value == "ready"
    late: ProbeResult = failed("app", "backend", reason=Reason.NETWORK)
    state.record(late)
    assert state.status().value == "starting" and state.readiness() == decide(
        [Standing("db", "writer", True, False, None), Standing("app", "backend", False, False, Reason.NETWORK)],
        ReadinessPolicy.GATE,
    )
