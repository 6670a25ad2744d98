"""Probe results -> per-probe records -> an immutable Snapshot that HTTP handlers and metrics read.

Everything here runs on the event loop thread (the scheduler records, handlers read), so there is no locking.
Handlers never wait on a probe: they read the last snapshot, rebuilt only after something changed.
Recording a result costs the same whatever the number of targets: the readiness verdict is kept by a tally
(agent.runtime.readiness.Standings), each record keeps its own view, and the snapshot, a tuple of those views, is
put together only when read after a change (at most once per batch of results, never once per result).
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

from agent import __version__
from agent.config.models import AgentConfig
from agent.probes.base import ProbeResult
from agent.probes.db_facts import DbFacts
from agent.runtime.plan import SHARED_TARGET
from agent.runtime.readiness import (
    STALL_FLOOR_SECONDS,
    Failing,
    Readiness,
    Standing,
    Standings,
    Status,
    is_stalled,
    still_failing,
)
from agent.shared.clock import CLOCK
from agent.shared.reasons import NOT_RUN_CODE, Reason, Scope, default_scope

log = logging.getLogger(__name__)

CREDENTIALS_PROBE = "credentials"  # its details carry the AWS identity shown in /status and the metrics
# Prometheus-style upper bounds (seconds): from a local Unix socket login to a probe at the 10 s timeout.
DURATION_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True, slots=True)
class DurationHistogram:
    """Bucketed probe durations: counts per bucket of DURATION_BUCKETS plus one for +Inf (not cumulative)."""

    counts: tuple[int, ...] = (0,) * (len(DURATION_BUCKETS) + 1)
    total_seconds: float = 0.0

    def observe(self, seconds: float) -> DurationHistogram:
        """A histogram with one more observation (bounded memory: only counts are kept)."""
        index = bisect_left(DURATION_BUCKETS, seconds)  # first bound >= seconds: Prometheus `le` semantics
        counts = list(self.counts)
        counts[index] += 1
        return DurationHistogram(tuple(counts), self.total_seconds + seconds)

    @property
    def count(self) -> int:
        """Number of observations."""
        return sum(self.counts)


@dataclass(frozen=True, slots=True)
class ProbeView:
    """One (probe, target) as of the snapshot."""

    probe: str
    target: str
    last: ProbeResult | None  # None until the probe has run once
    consecutive_failures: int
    consecutive_successes: int
    passed_once: bool
    failing: bool  # counted failing by the threshold latch (see agent.runtime.readiness)
    last_success: float | None  # time.time() of the last passing run
    failures: Mapping[Reason, int]  # monotonic, every reason present (zero included)
    durations: DurationHistogram
    # monotonic, by (reason, scope): every reason with its default scope (zero included), plus any other seen
    failures_by_scope: Mapping[tuple[Reason, Scope], int] = field(default_factory=dict)
    critical: bool = True  # False: an optional target (`critical: false`), never a cause of 503
    facts: DbFacts = field(default_factory=DbFacts)  # the last facts a database login read (kept while later runs fail)


@dataclass(frozen=True, slots=True)
class AwsIdentity:
    """Who the task is in AWS, from the last passing credentials probe."""

    arn: str | None
    account: str | None
    provider: str | None
    expires_at: datetime | None  # None for credentials that do not expire (static keys)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything /ready, /status and /metrics show, frozen at one moment."""

    status: Status
    http_ok: bool
    failing: tuple[Failing, ...]
    probes: tuple[ProbeView, ...]
    aws: AwsIdentity | None
    version: str = __version__
    clock_skew_seconds: float | None = None  # server minus local, from the last AWS answer (agent.shared.clock)
    failure_threshold: int = 1  # failures in a row before a probe counts (a failure below it is pending)


@dataclass(slots=True)
class _Record:
    """The mutable history of one (probe, target)."""

    probe: str
    target: str
    last: ProbeResult | None = None
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    passed_once: bool = False
    failing: bool = False
    failing_reason: Reason | None = None
    failing_scope: Scope | None = None
    critical: bool = True
    last_success: float | None = None
    failures: Counter[tuple[Reason, Scope]] = field(default_factory=Counter)
    durations: DurationHistogram = field(default_factory=DurationHistogram)
    facts: DbFacts = field(default_factory=DbFacts)
    _view: ProbeView | None = None  # built on first read after a change

    def update(self, result: ProbeResult, failure_threshold: int, success_threshold: int) -> None:
        if result.ok:
            self.consecutive_successes += 1
            self.consecutive_failures = 0
            self.passed_once = True
            self.last_success = result.finished_at
        else:
            self.consecutive_failures += 1
            self.consecutive_successes = 0
            self.failing_reason = result.reason or Reason.UNKNOWN
            self.failing_scope = result.scope or default_scope(self.failing_reason)
            self.failures[(self.failing_reason, self.failing_scope)] += 1
        # Skipped runs count as failures but took no time: zeros would drag the histogram down in an outage.
        if result.code != NOT_RUN_CODE:
            self.durations = self.durations.observe(result.duration_ms / 1000)
        self.failing = still_failing(
            self.failing,
            self.consecutive_failures,
            self.consecutive_successes,
            failure_threshold,
            success_threshold,
        )
        if not (facts := DbFacts.from_details(result.details)).empty:
            self.facts = facts  # a failed run that read none keeps the last known: the certificate did not go away
        self.last = result
        self._view = None

    def standing(self) -> Standing:
        return Standing(
            self.probe,
            self.target,
            self.passed_once,
            self.failing,
            self.failing_reason,
            self.failing_scope,
            self.critical,
        )

    def view(self) -> ProbeView:
        if self._view is None:
            self._view = self._build_view()
        return self._view

    def _build_view(self) -> ProbeView:
        return ProbeView(
            probe=self.probe,
            target=self.target,
            last=self.last,
            consecutive_failures=self.consecutive_failures,
            consecutive_successes=self.consecutive_successes,
            passed_once=self.passed_once,
            failing=self.failing,
            last_success=self.last_success,
            failures=MappingProxyType({r: sum(n for (r2, _), n in self.failures.items() if r2 is r) for r in Reason}),
            durations=self.durations,
            failures_by_scope=MappingProxyType(
                {(r, default_scope(r)): 0 for r in Reason} | dict(sorted(self.failures.items()))
            ),
            critical=self.critical,
            facts=self.facts,
        )


class AgentState:
    """The latest probe results and what they mean for readiness; the scheduler writes, handlers read."""

    def __init__(
        self,
        config: AgentConfig,
        expected: Iterable[tuple[str, str]] = (),
        *,
        stall_floor_seconds: float = STALL_FLOOR_SECONDS,
    ) -> None:
        self._config = config
        self._optional = optional_targets(config)
        self._stall_floor = stall_floor_seconds
        self._records: dict[tuple[str, str], _Record] = {}
        self._aws: AwsIdentity | None = None
        self._draining = False
        self._last_heartbeat = time.monotonic()  # the scheduler's first tick counts from construction
        self._snapshot: Snapshot | None = None
        self._standings = Standings()
        for probe, target in expected:
            self._record_for(probe, target)

    def record(self, result: ProbeResult) -> None:
        """Take one probe run's result (an unexpected pair is registered on the fly)."""
        record = self._record_for(result.probe, result.target)
        record.update(result, self._config.failure_threshold, self._config.success_threshold)
        self._standings.put(record.standing())
        if result.ok and result.probe == CREDENTIALS_PROBE:
            self._aws = identity_from(result.details)
        self._snapshot = None

    def heartbeat(self) -> None:
        """Called by the scheduler on every loop tick: proves to /health that probing is not stuck."""
        self._last_heartbeat = time.monotonic()

    def start_draining(self) -> None:
        """Shutting down: /ready answers 503 `draining` from now on."""
        if not self._draining:
            self._draining = True
            self._snapshot = None

    def stalled(self) -> bool:
        """Whether the scheduler missed its heartbeats for too long (the /health rule)."""
        return is_stalled(self._last_heartbeat, time.monotonic(), self._config.interval_seconds, self._stall_floor)

    def status(self) -> Status:
        """The overall status now, in constant time (for observers, which hear of every result)."""
        return self._standings.status(self._config.readiness_policy, self._draining)

    def readiness(self) -> Readiness:
        """The policy's verdict now: the status and the failing list (/ready reads only this)."""
        return self._standings.verdict(self._config.readiness_policy, self._draining)

    def probe_view(self, probe: str, target: str) -> ProbeView:
        """One (probe, target) as of now, without building the whole snapshot; KeyError if never registered."""
        return self._records[(probe, target)].view()

    def snapshot(self) -> Snapshot:
        """The current state, immutable; rebuilt only when read after a result, expectation or drain changed it."""
        if self._snapshot is None:
            readiness = self.readiness()
            self._snapshot = Snapshot(
                status=readiness.status,
                http_ok=readiness.http_ok,
                failing=readiness.failing,
                probes=tuple(record.view() for record in self._records.values()),
                aws=self._aws,
                clock_skew_seconds=CLOCK.seconds,
                failure_threshold=self._config.failure_threshold,
            )
        return self._snapshot

    def _record_for(self, probe: str, target: str) -> _Record:
        key = (probe, target)
        record = self._records.get(key)
        if record is None:
            record = self._records[key] = _Record(probe, target, critical=target not in self._optional)
            self._standings.put(record.standing())
            self._snapshot = None
        return record


def optional_targets(config: AgentConfig) -> frozenset[str]:
    """Targets whose probes never make /ready 503: `critical: false` ones, and the shared AWS credentials when
    only such targets use AWS."""
    optional = {t.name for t in config.targets if not t.critical}
    aws_users = [t for t in config.targets if t.uses_aws]
    if aws_users and all(t.name in optional for t in aws_users):
        optional.add(SHARED_TARGET)
    return frozenset(optional)


def identity_from(details: Mapping[str, str]) -> AwsIdentity:
    """The AWS identity in a credentials probe's details (`expires_at` is ISO 8601)."""
    return AwsIdentity(
        arn=details.get("arn") or None,
        account=details.get("account") or None,
        provider=details.get("provider") or None,
        expires_at=_parse_time(details.get("expires_at")),
    )


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        log.debug("credentials expiry %r is not ISO 8601; ignored", text)
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
