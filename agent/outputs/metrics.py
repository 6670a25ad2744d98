"""Prometheus metrics: a Collector that reads the state snapshot at scrape time (nothing updated per run).

Labels are bounded: probe, target and reason (a fixed vocabulary); AWS calls add service, operation and
outcome, all chosen by the agent's own code. The registry is the agent's own, not the global default.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from agent.runtime.readiness import Status
from agent.runtime.state import DURATION_BUCKETS, AgentState, ProbeView, Snapshot
from agent.shared.counters import COUNTERS, CallCounters

PREFIX = "health_agent_"
_PROBE_LABELS = ["probe", "target"]


class StateCollector:
    """A prometheus_client Collector over AgentState and the call counters."""

    def __init__(self, state: AgentState, counters: CallCounters = COUNTERS) -> None:
        self._state = state
        self._counters = counters

    def collect(self) -> Iterator[Metric]:
        """Every agent metric, from the snapshot as it is right now."""
        snapshot = self._state.snapshot()
        yield from _probe_metrics(snapshot.probes)
        yield from _db_fact_metrics(snapshot.probes)
        yield from _status_metrics(snapshot)
        yield from _cost_metrics(self._counters)
        info = GaugeMetricFamily(f"{PREFIX}build_info", "Agent version; always 1.", labels=["version"])
        info.add_metric([snapshot.version], 1)
        yield info


def build_registry(
    state: AgentState, counters: CallCounters = COUNTERS, process_metrics: bool = True
) -> CollectorRegistry:
    """A registry with the agent's collector, plus process_* (memory, CPU, fds) where /proc exists."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(state, counters))
    if process_metrics and sys.platform == "linux":
        # A sidecar's memory and file descriptors are what an operator sizes the task definition by.
        ProcessCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The Prometheus text exposition of a registry (serve with prometheus_client.CONTENT_TYPE_LATEST)."""
    return generate_latest(registry)


def _probe_metrics(probes: Iterable[ProbeView]) -> Iterator[Metric]:
    success = GaugeMetricFamily(
        f"{PREFIX}probe_success",
        "1 if the last run passed, 0 if it failed (absent before the first run).",
        labels=_PROBE_LABELS,
    )
    duration = HistogramMetricFamily(
        f"{PREFIX}probe_duration_seconds", "How long probe runs took.", labels=_PROBE_LABELS
    )
    failures = CounterMetricFamily(
        f"{PREFIX}probe_failures",
        "Failed probe runs, by reason and by scope (task: a replacement task could fix it; shared: it could not).",
        labels=[*_PROBE_LABELS, "reason", "scope"],
    )
    last_success = GaugeMetricFamily(
        f"{PREFIX}probe_last_success_timestamp_seconds",
        "Unix time of the last passing run.",
        labels=_PROBE_LABELS,
    )
    consecutive = GaugeMetricFamily(
        f"{PREFIX}probe_consecutive_failures", "Failed runs in a row (0 after a pass).", labels=_PROBE_LABELS
    )
    for view in probes:
        labels = [view.probe, view.target]
        if view.last is not None:
            success.add_metric(labels, 1 if view.last.ok else 0)
        duration.add_metric(labels, _cumulative(view.durations.counts), view.durations.total_seconds)
        for (reason, scope), count in view.failures_by_scope.items():
            failures.add_metric([*labels, reason.value, scope.value], count)
        if view.last_success is not None:
            last_success.add_metric(labels, view.last_success)
        consecutive.add_metric(labels, view.consecutive_failures)
    yield from (success, duration, failures, last_success, consecutive)


def _db_fact_metrics(probes: Iterable[ProbeView]) -> Iterator[Metric]:
    """What database logins read (agent.probes.db_facts): one series per target that has the fact."""
    gauges = {name: GaugeMetricFamily(f"{PREFIX}{name}", text, labels=["target"]) for name, text in _DB_FACTS.items()}
    for view in probes:
        facts = view.facts
        values = {
            "db_read_only": None if facts.read_only is None else float(facts.read_only),
            "db_certificate_expiry_timestamp_seconds": _timestamp(facts.certificate_not_after),
            "db_password_expiry_timestamp_seconds": _timestamp(facts.password_expires_at),
            "db_connections": facts.connections,
            "db_max_connections": facts.max_connections,
        }
        for name, value in values.items():
            if value is not None:
                gauges[name].add_metric([view.target], value)
    yield from gauges.values()


_DB_FACTS = {
    "db_read_only": "1 if the server the login reached is read-only (a standby or read_only=ON), else 0.",
    "db_certificate_expiry_timestamp_seconds": "Unix time at which the database server's TLS certificate expires.",
    "db_password_expiry_timestamp_seconds": "Unix time at which the login's database password expires.",
    "db_connections": "Sessions open on the database server, read at the last fresh login.",
    "db_max_connections": "Sessions a login like the agent's may open (max_connections less the reserved slots).",
}


def _timestamp(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def _cumulative(counts: tuple[int, ...]) -> list[tuple[str, float]]:
    bounds = [str(b) for b in DURATION_BUCKETS] + ["+Inf"]
    buckets, running = [], 0
    for bound, count in zip(bounds, counts, strict=True):
        running += count
        buckets.append((bound, float(running)))
    return buckets


def _status_metrics(snapshot: Snapshot) -> Iterator[Metric]:
    ready = GaugeMetricFamily(f"{PREFIX}ready", "1 if /ready answers 200, else 0.")
    ready.add_metric([], 1 if snapshot.http_ok else 0)
    status = GaugeMetricFamily(f"{PREFIX}status", "The overall status, one-hot.", labels=["status"])
    for candidate in Status:
        status.add_metric([candidate.value], 1 if candidate is snapshot.status else 0)
    yield from (ready, status)
    if snapshot.aws is not None and snapshot.aws.expires_at is not None:
        expiry = GaugeMetricFamily(
            f"{PREFIX}aws_credentials_expiry_timestamp_seconds",
            "Unix time at which the task's current AWS credentials expire.",
        )
        expiry.add_metric([], snapshot.aws.expires_at.timestamp())
        yield expiry
    if snapshot.clock_skew_seconds is not None:
        skew = GaugeMetricFamily(
            f"{PREFIX}clock_skew_seconds",
            "AWS's clock minus this task's, from the Date header of the last AWS answer (absent before one);"
            " AWS refuses signatures beyond 300 s either way.",
        )
        skew.add_metric([], snapshot.clock_skew_seconds)
        yield skew


def _cost_metrics(counters: CallCounters) -> Iterator[Metric]:
    connections = CounterMetricFamily(
        f"{PREFIX}db_connections_opened", "Database connections opened (full logins).", labels=["target"]
    )
    for target, count in sorted(counters.db_connections_opened.items()):
        connections.add_metric([target], count)
    calls = CounterMetricFamily(
        f"{PREFIX}aws_api_calls",
        "AWS API calls made by the agent.",
        labels=["service", "operation", "outcome"],
    )
    for (service, operation, outcome), count in sorted(counters.aws_calls.items()):
        calls.add_metric([service, operation, outcome], count)
    attempts = CounterMetricFamily(
        f"{PREFIX}db_login_attempts",
        "Database login attempts, by outcome: success, or the failure's reason (auth, throttled, network, ...).",
        labels=["target", "outcome"],
    )
    for (target, outcome), count in sorted(counters.db_login_attempts.items()):
        attempts.add_metric([target, outcome], count)
    yield from (connections, calls, attempts)
