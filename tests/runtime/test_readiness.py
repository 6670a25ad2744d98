"""The readiness policy as a pure function: run histories -> status, HTTP verdict, failing list."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from agent.config.models import ReadinessPolicy
from agent.runtime.readiness import Standing, Status, decide, is_stalled, stall_after, still_failing
from agent.shared.reasons import Reason, Scope

GATE, STRICT = ReadinessPolicy.GATE, ReadinessPolicy.STRICT


def replay(
    probe: str, runs: str, failure_threshold: int = 3, success_threshold: int = 1, critical: bool = True
) -> Standing:
    """A probe's standing after `runs`: space-separated `ok`, a failure reason, or `reason/scope` when the
    failure's scope is not its reason's default (e.g. `auth/shared`: a rotation; `network/task`: the backend)."""
    failing = passed = False
    failures = successes = 0
    reason: Reason | None = None
    scope: Scope | None = None
    for run in runs.split():
        if run == "ok":
            successes, failures, passed = successes + 1, 0, True
        else:
            name, _, scoped = run.partition("/")
            failures, successes, reason, scope = failures + 1, 0, Reason(name), Scope(scoped) if scoped else None
        failing = still_failing(failing, failures, successes, failure_threshold, success_threshold)
    return Standing(probe, "writer", passed, failing, reason, scope, critical)


@dataclass(frozen=True)
class Case:
    policy: ReadinessPolicy
    runs: dict[str, str]
    status: Status
    failing: list[str] = field(default_factory=list)
    thresholds: tuple[int, int] = (3, 1)
    draining: bool = False
    optional: tuple[str, ...] = ()  # probes of an optional target (`critical: false`)


CASES = {
    "nothing has run yet: starting": Case(GATE, {"credentials": "", "db": ""}, Status.STARTING),
    "one probe has not passed yet: starting": Case(GATE, {"credentials": "ok", "db": ""}, Status.STARTING),
    "every probe passed once: ready": Case(GATE, {"credentials": "ok", "db": "ok"}, Status.READY),
    "no probes expected: ready": Case(GATE, {}, Status.READY),
    "gate, starting, network at threshold: still starting": Case(
        GATE, {"credentials": "ok", "db": "network network network"}, Status.STARTING, ["db"]
    ),
    "gate, starting, auth below threshold: still starting": Case(
        GATE, {"credentials": "ok", "db": "auth auth"}, Status.STARTING
    ),
    "gate, starting, auth at threshold: not_ready shows the reason": Case(
        GATE, {"credentials": "ok", "db": "auth auth auth"}, Status.NOT_READY, ["db"]
    ),
    "gate, auth at threshold after a pass: not_ready": Case(
        GATE, {"credentials": "ok", "db": "ok auth auth auth"}, Status.NOT_READY, ["db"]
    ),
    "gate, config at threshold: not_ready": Case(
        GATE, {"credentials": "config config config", "db": "ok"}, Status.NOT_READY, ["credentials"]
    ),
    "gate, network at threshold after a pass: degraded (200)": Case(
        GATE, {"credentials": "ok", "db": "ok network network network"}, Status.DEGRADED, ["db"]
    ),
    "gate, timeout, throttled, unknown at threshold: degraded": Case(
        GATE,
        {
            "a": "ok timeout timeout timeout",
            "b": "ok throttled throttled throttled",
            "c": "ok unknown unknown unknown",
        },
        Status.DEGRADED,
        ["a", "b", "c"],
    ),
    "gate, one auth among network failures: not_ready": Case(
        GATE, {"a": "ok network network network", "b": "ok auth auth auth"}, Status.NOT_READY, ["a", "b"]
    ),
    "gate, below threshold: nothing changes (ready)": Case(
        GATE, {"credentials": "ok", "db": "ok auth auth"}, Status.READY
    ),
    "strict, network at threshold: not_ready": Case(
        STRICT, {"credentials": "ok", "db": "ok network network network"}, Status.NOT_READY, ["db"]
    ),
    "strict, starting, network at threshold: not_ready": Case(
        STRICT, {"credentials": "ok", "db": "network network network"}, Status.NOT_READY, ["db"]
    ),
    "strict, below threshold: nothing changes (ready)": Case(
        STRICT, {"credentials": "ok", "db": "ok network network"}, Status.READY
    ),
    "strict, every probe passed: ready": Case(STRICT, {"credentials": "ok", "db": "ok"}, Status.READY),
    "latest reason wins: auth then network is degraded": Case(
        GATE, {"db": "ok auth auth network"}, Status.DEGRADED, ["db"]
    ),
    "one pass clears a failure with success_threshold=1": Case(GATE, {"db": "ok auth auth auth ok"}, Status.READY),
    "success_threshold=2: one pass is not enough": Case(
        GATE, {"db": "ok auth auth auth ok"}, Status.NOT_READY, ["db"], thresholds=(3, 2)
    ),
    "success_threshold=2: two passes clear it": Case(
        GATE, {"db": "ok auth auth auth ok ok"}, Status.READY, thresholds=(3, 2)
    ),
    "success_threshold=2: a failure in between restarts the count": Case(
        GATE, {"db": "ok auth auth auth ok network ok"}, Status.DEGRADED, ["db"], thresholds=(3, 2)
    ),
    "failure_threshold=1: the first failure counts": Case(
        GATE, {"db": "ok network"}, Status.DEGRADED, ["db"], thresholds=(1, 1)
    ),
    "gate, auth with scope shared (rotation in progress) at threshold: degraded": Case(
        GATE, {"secret": "ok", "db": "ok auth/shared auth/shared auth/shared"}, Status.DEGRADED, ["db"]
    ),
    "gate, auth with scope shared while starting: starting, not not_ready": Case(
        GATE, {"db": "auth/shared auth/shared auth/shared"}, Status.STARTING, ["db"]
    ),
    "gate, backend network failure (scope task) at threshold: not_ready": Case(
        GATE, {"db": "ok", "app": "ok network/task network/task network/task"}, Status.NOT_READY, ["app"]
    ),
    "gate, backend refused below threshold: still ready": Case(
        GATE, {"db": "ok", "app": "ok network/task network/task"}, Status.READY
    ),
    "gate, backend never answered: starting": Case(GATE, {"db": "ok", "app": ""}, Status.STARTING),
    "gate, backend not up yet (refused at threshold, never passed): starting, shown failing": Case(
        GATE, {"db": "ok", "app": "network/task network/task network/task"}, Status.STARTING, ["app"]
    ),
    "strict, backend not up yet: starting, not not_ready": Case(
        STRICT, {"db": "ok", "app": "timeout/task timeout/task timeout/task"}, Status.STARTING, ["app"]
    ),
    "gate, backend not up yet next to a bad password: not_ready": Case(
        GATE, {"db": "auth auth auth", "app": "network/task network/task network/task"}, Status.NOT_READY, ["db", "app"]
    ),
    "gate, backend answering 500 after a pass: not_ready": Case(
        GATE, {"db": "ok", "app": "ok server/task server/task server/task"}, Status.NOT_READY, ["app"]
    ),
    "gate, password drift (auth, task) next to a shared throttle: not_ready": Case(
        GATE, {"a": "ok throttled throttled throttled", "b": "ok auth auth auth"}, Status.NOT_READY, ["a", "b"]
    ),
    "optional target failing auth at threshold: degraded, never 503": Case(
        GATE, {"db": "ok", "replica": "ok auth auth auth"}, Status.DEGRADED, ["replica"], optional=("replica",)
    ),
    "strict, optional target failing: degraded, never 503": Case(
        STRICT,
        {"db": "ok", "replica": "ok network network network"},
        Status.DEGRADED,
        ["replica"],
        optional=("replica",),
    ),
    "optional target that never passed does not hold up starting": Case(
        GATE, {"db": "ok", "replica": "network"}, Status.READY, optional=("replica",)
    ),
    "draining wins over ready": Case(GATE, {"db": "ok"}, Status.DRAINING, draining=True),
    "draining wins over not_ready": Case(STRICT, {"db": "auth auth auth"}, Status.DRAINING, ["db"], draining=True),
    "draining wins over starting": Case(GATE, {"db": ""}, Status.DRAINING, draining=True),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_policy(case: Case) -> None:
    """Each history maps to the documented status, HTTP verdict and failing list."""
    ft, st = case.thresholds
    standings = [replay(probe, runs, ft, st, probe not in case.optional) for probe, runs in case.runs.items()]
    verdict = decide(standings, case.policy, draining=case.draining)
    assert verdict.status is case.status
    assert verdict.http_ok is (case.status in {Status.READY, Status.DEGRADED})
    assert [f.probe for f in verdict.failing] == case.failing


def test_failing_entries_carry_probe_target_reason_and_scope() -> None:
    """The failing list names probe, target, the latest failure's reason and its scope."""
    verdict = decide([replay("db", "ok tls tls tls")], GATE)
    assert [f.as_dict() for f in verdict.failing] == [
        {"probe": "db", "target": "writer", "reason": "tls", "scope": "shared"}
    ]


@pytest.mark.parametrize(
    ("was", "failures", "successes", "expected"),
    [
        (False, 2, 0, False),  # below the threshold
        (False, 3, 0, True),  # at the threshold
        (True, 0, 1, True),  # one pass of the two needed
        (True, 0, 2, False),  # cleared
        (False, 0, 1, False),
    ],
)
def test_latch(was: bool, failures: int, successes: int, expected: bool) -> None:
    """still_failing latches at failure_threshold=3 and clears after success_threshold=2 passes."""
    assert still_failing(was, failures, successes, 3, 2) is expected


@pytest.mark.parametrize(("interval", "after"), [(0.5, 30.0), (10.0, 30.0), (15.0, 45.0), (60.0, 180.0)])
def test_stall_after_is_three_intervals_but_at_least_30s(interval: float, after: float) -> None:
    """/health tolerates max(3 x interval, 30 s) without a heartbeat."""
    assert stall_after(interval) == after


def test_is_stalled_only_past_the_limit() -> None:
    """Exactly at the limit is still alive; beyond it is stalled."""
    assert not is_stalled(last_heartbeat=100.0, now=130.0, interval_seconds=5.0)
    assert is_stalled(last_heartbeat=100.0, now=130.1, interval_seconds=5.0)
    assert is_stalled(last_heartbeat=0.0, now=0.31, interval_seconds=0.1, floor_seconds=0.2)
