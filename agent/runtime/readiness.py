"""The readiness policy: per-probe standings -> (status, HTTP ok, failing list); the /health stall rule.

A probe *counts as failing* once it has failed `failure_threshold` runs in a row, and stays counted until it
passes `success_threshold` runs in a row (hysteresis, so a flapping probe cannot flap /ready). Below the
threshold a failure changes nothing: the status stays what it was (a task that was ready stays ready, a task
that was starting stays starting). That is the point of a threshold: one lost packet must not pull a task out
of a load balancer, and "degraded" means "a dependency is down", not "one run failed". The failing run is
still visible at once in /status and the metrics, and logged.

`gate` (default) is built for a fleet behind an ALB:
  * `starting` (503) until every expected probe has passed once: a task that never proved it can reach its
    database takes no traffic;
  * `not_ready` (503) when a counted failure has scope `task`: a replacement task (fresh secret, fixed task
    definition, a backend that starts) can fix it, so letting ECS replace this one is right. This applies while
    starting too, so a bad password reads `not_ready` with its reason rather than an endless `starting`;
  * `degraded` (200) when every counted failure has scope `shared` (network, dns, timeout, tls, server,
    throttled, unknown, a secret rotation in progress): every task sees the same outage, and failing readiness
    would make ECS churn the whole fleet without fixing anything;
  * `ready` (200) otherwise.
A failure's scope comes from its reason (auth and config are `task`), unless its probe or its code says
otherwise: the backend probe's failures are all `task`; a rotation in progress is `auth` but `shared`.
`strict` turns any counted failure into `not_ready`, whatever its scope and also while starting (for a
single task, or a service that prefers replacement to staying in the target group through an outage).
Otherwise it is `starting` until every probe has passed once, then `ready`.
A task-scope failure that waiting can fix (not auth or config: the backend not answering yet) of a probe that
has never passed reads `starting` under either policy: on ECS the backend starts only once the agent is healthy
(`dependsOn`), so every task sees its backend down first, and `/ready` stays `starting` until it has answered once.
Probes of an optional target (`critical: false`) are run and shown but never make the status 503: they do not
hold up `starting`, and a counted failure of theirs reads `degraded` under either policy.
`draining` (503) wins over everything: the process is shutting down and the ALB should stop sending traffic.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from agent.config.models import ReadinessPolicy
from agent.shared.reasons import TASK_LOCAL_REASONS, Reason, Scope, default_scope

# Liveness tolerates this long without a scheduler heartbeat, however short the interval: a GC pause or a
# slow DNS resolver on a busy host must not get a healthy sidecar killed.
STALL_FLOOR_SECONDS = 30.0
STALL_INTERVALS = 3


class Status(StrEnum):
    """The overall status, as /ready, /status and the `status` metric report it."""

    STARTING = "starting"
    READY = "ready"
    DEGRADED = "degraded"
    NOT_READY = "not_ready"
    DRAINING = "draining"

    @property
    def http_ok(self) -> bool:
        """Whether /ready answers 200 (ready, degraded) rather than 503."""
        return self in _HTTP_OK


_HTTP_OK = frozenset({Status.READY, Status.DEGRADED})


@dataclass(frozen=True, slots=True)
class Standing:
    """What the policy needs to know about one (probe, target): has it passed once, is it counted failing."""

    probe: str
    target: str
    passed_once: bool
    failing: bool
    reason: Reason | None  # why it is counted failing (the latest failure's reason)
    scope: Scope | None = None  # the latest failure's scope
    critical: bool = True  # False: an optional target's probe, never a cause of 503


@dataclass(frozen=True, slots=True)
class Failing:
    """One entry of the `failing` list in /ready and /status."""

    probe: str
    target: str
    reason: str
    scope: str

    def as_dict(self) -> dict[str, str]:
        """The JSON shape."""
        return {"probe": self.probe, "target": self.target, "reason": self.reason, "scope": self.scope}


@dataclass(frozen=True, slots=True)
class Readiness:
    """The policy's verdict."""

    status: Status
    http_ok: bool
    failing: tuple[Failing, ...]


def still_failing(
    was_failing: bool,
    consecutive_failures: int,
    consecutive_successes: int,
    failure_threshold: int,
    success_threshold: int,
) -> bool:
    """Whether a probe counts as failing after a run: the threshold latch with its hysteresis."""
    if consecutive_failures >= failure_threshold:
        return True
    return was_failing and consecutive_successes < success_threshold


def decide(standings: Iterable[Standing], policy: ReadinessPolicy, draining: bool = False) -> Readiness:
    """Apply the readiness policy (see the module docstring) to every expected probe's standing."""
    standings = tuple(standings)
    tally = Tally()
    for standing in standings:
        tally.add(standing)
    failing = tuple(failing_entry(s) for s in standings if s.failing)
    status = tally.status(policy, draining)
    return Readiness(status, status in _HTTP_OK, failing)


@dataclass(slots=True)
class Tally:
    """How many standings sit where the policy looks: all it needs to decide the status, kept by +-1 per change."""

    counted: int = 0  # counted failing
    decisive: int = 0  # counted failing, critical, and not a dependency still coming up
    decisive_task: int = 0  # of those, scope `task`
    waiting: int = 0  # critical and never passed

    def add(self, standing: Standing, sign: int = 1) -> None:
        """Count a standing in (sign 1) or out (sign -1)."""
        if standing.failing:
            self.counted += sign
            if standing.critical and not _coming_up(standing):
                self.decisive += sign
                self.decisive_task += sign if _scope(standing) is Scope.TASK else 0
        if standing.critical and not standing.passed_once:
            self.waiting += sign

    def status(self, policy: ReadinessPolicy, draining: bool) -> Status:
        """The overall status (see the module docstring)."""
        if draining:
            return Status.DRAINING
        if policy is ReadinessPolicy.STRICT and self.decisive:
            return Status.NOT_READY
        if self.decisive_task:
            return Status.NOT_READY
        if self.waiting:
            return Status.STARTING
        return Status.DEGRADED if self.counted else Status.READY


class Standings:
    """Every expected probe's standing and the policy's verdict, kept up to date one standing at a time.

    put() costs the same whatever the number of probes (the tally moves by +-1); the `failing` list is sorted
    (registration order, as decide() lists it) only when read after it changed.
    """

    def __init__(self) -> None:
        self._standings: dict[tuple[str, str], Standing] = {}
        self._order: dict[tuple[str, str], int] = {}
        self._tally = Tally()
        self._failing: dict[tuple[str, str], Failing] = {}
        self._failing_list: tuple[Failing, ...] | None = ()

    def put(self, standing: Standing) -> None:
        """Register or replace the standing of (standing.probe, standing.target)."""
        key = (standing.probe, standing.target)
        old = self._standings.get(key)
        if old is None:
            self._order[key] = len(self._order)
        else:
            self._tally.add(old, -1)
        self._standings[key] = standing
        self._tally.add(standing)
        entry = failing_entry(standing) if standing.failing else None
        if self._failing.get(key) != entry:
            self._failing_list = None
            if entry is None:
                del self._failing[key]
            else:
                self._failing[key] = entry

    def status(self, policy: ReadinessPolicy, draining: bool) -> Status:
        """The overall status, from the tally alone."""
        return self._tally.status(policy, draining)

    def failing(self) -> tuple[Failing, ...]:
        """The counted failures, in registration order."""
        if self._failing_list is None:
            keys = sorted(self._failing, key=self._order.__getitem__)
            self._failing_list = tuple(self._failing[key] for key in keys)
        return self._failing_list

    def verdict(self, policy: ReadinessPolicy, draining: bool) -> Readiness:
        """What decide() says of the same standings."""
        status = self.status(policy, draining)
        return Readiness(status, status in _HTTP_OK, self.failing())


def failing_entry(standing: Standing) -> Failing:
    """The `failing` list's entry for a standing counted failing."""
    return Failing(standing.probe, standing.target, _reason(standing), _scope(standing).value)


def _coming_up(standing: Standing) -> bool:
    """A dependency of this task that has not answered yet (the backend starting): waiting can fix it."""
    return not standing.passed_once and _scope(standing) is Scope.TASK and standing.reason not in TASK_LOCAL_REASONS


def _reason(standing: Standing) -> str:
    return standing.reason.value if standing.reason is not None else Reason.UNKNOWN.value


def _scope(standing: Standing) -> Scope:
    return standing.scope or default_scope(standing.reason or Reason.UNKNOWN)


def stall_after(interval_seconds: float, floor_seconds: float = STALL_FLOOR_SECONDS) -> float:
    """How long without a heartbeat means the scheduler is stuck: max(3 x interval, 30 s)."""
    return max(STALL_INTERVALS * interval_seconds, floor_seconds)


def is_stalled(
    last_heartbeat: float, now: float, interval_seconds: float, floor_seconds: float = STALL_FLOOR_SECONDS
) -> bool:
    """Liveness rule for /health: stalled only when no heartbeat arrived within stall_after()."""
    return now - last_heartbeat > stall_after(interval_seconds, floor_seconds)
