"""/metrics as Prometheus scrapes it: parsed with prometheus_client's parser and checked by promtool."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from datetime import datetime

import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from agent import __version__
from agent.outputs.metrics import build_registry, render
from agent.runtime.state import AgentState
from agent.shared.counters import CallCounters
from agent.shared.reasons import Reason, default_scope
from tests.support.http import IDENTITY, fetch, ready_state, serve
from tests.support.results import PAIRS, failed, make_config, passed

PROMTOOL_PACKAGE = "prometheus"  # Debian/Ubuntu: apt-get install -y prometheus -> /usr/bin/promtool

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, keyed by (sample name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """One sample's value, or None when it is absent."""
    return samples.get((name, frozenset(labels.items())))


async def scrape(state: AgentState) -> Samples:
    """Scrape a live server the way Prometheus does and parse the answer."""
    async with serve(state) as base:
        reply = await fetch(f"{base}/metrics")
    assert reply.status == 200 and reply.headers["Content-Type"] == CONTENT_TYPE_LATEST
    return parse(reply.body.decode())


async def test_metrics_are_200_even_when_not_ready() -> None:
    """A failing agent still serves /metrics with 200 (a 503 would drop the whole scrape)."""
    state = AgentState(make_config(failure_threshold=1), PAIRS)
    state.record(failed())
    samples = await scrape(state)
    assert value(samples, "health_agent_ready") == 0
    assert value(samples, "health_agent_status", status="not_ready") == 1


async def test_values_follow_transitions() -> None:
    """success, consecutive failures, failures by reason, status one-hot and last success track the state."""
    state = ready_state(make_config(failure_threshold=2))
    ok = passed()
    state.record(ok)
    samples = await scrape(state)
    db = {"probe": "db", "target": "writer"}
    assert value(samples, "health_agent_probe_success", **db) == 1
    assert value(samples, "health_agent_ready") == 1
    assert value(samples, "health_agent_probe_last_success_timestamp_seconds", **db) == ok.finished_at
    assert value(samples, "health_agent_probe_failures_total", **db, reason="network", scope="shared") == 0
    for _ in range(2):
        state.record(failed(reason=Reason.NETWORK))
    samples = await scrape(state)
    assert value(samples, "health_agent_probe_success", **db) == 0
    assert value(samples, "health_agent_probe_consecutive_failures", **db) == 2
    assert value(samples, "health_agent_probe_failures_total", **db, reason="network", scope="shared") == 2
    assert value(samples, "health_agent_ready") == 1
    one_hot = {s: value(samples, "health_agent_status", status=s) for s in ("starting", "ready", "degraded")}
    assert one_hot == {"starting": 0, "ready": 0, "degraded": 1}
    assert sum(v for (name, _), v in samples.items() if name == "health_agent_status") == 1


async def test_probe_success_absent_before_the_first_run() -> None:
    """No probe_success sample before a probe runs; consecutive failures and failure counters start at 0."""
    samples = await scrape(AgentState(make_config(), PAIRS))
    db = {"probe": "db", "target": "writer"}
    assert value(samples, "health_agent_probe_success", **db) is None
    assert value(samples, "health_agent_probe_consecutive_failures", **db) == 0
    assert all(
        value(samples, "health_agent_probe_failures_total", **db, reason=r.value, scope=default_scope(r).value) == 0
        for r in Reason
    )
    assert value(samples, "health_agent_status", status="starting") == 1


async def test_duration_histogram() -> None:
    """probe_duration_seconds has cumulative buckets from 0.005 to 10 s, +Inf, _sum and _count."""
    state = AgentState(make_config(), PAIRS)
    for ms in (3.0, 40.0, 40.0, 15_000.0):
        state.record(passed(duration_ms=ms))
    samples = await scrape(state)
    db = {"probe": "db", "target": "writer"}
    bucket = "health_agent_probe_duration_seconds_bucket"
    assert value(samples, bucket, **db, le="0.005") == 1
    assert value(samples, bucket, **db, le="0.05") == 3
    assert value(samples, bucket, **db, le="10.0") == 3
    assert value(samples, bucket, **db, le="+Inf") == 4
    assert value(samples, "health_agent_probe_duration_seconds_count", **db) == 4
    assert value(samples, "health_agent_probe_duration_seconds_sum", **db) == pytest.approx(15.083)


async def test_identity_expiry_build_info_and_process_metrics() -> None:
    """Credentials expiry appears once known; build_info carries the version; process memory is exported."""
    samples = await scrape(ready_state())
    expiry = datetime.fromisoformat(IDENTITY["expires_at"]).timestamp()
    assert value(samples, "health_agent_aws_credentials_expiry_timestamp_seconds") == expiry
    assert value(samples, "health_agent_build_info", version=__version__) == 1
    assert (value(samples, "process_resident_memory_bytes") or 0) > 0
    empty = await scrape(AgentState(make_config(), PAIRS))
    assert not any(name.startswith("health_agent_aws_credentials") for name, _ in empty)


def test_cost_counters() -> None:
    """AWS API calls and database connections come from the call counters, with their labels."""
    counters = CallCounters()
    counters.aws_call("sts", "GetCallerIdentity", "success")
    counters.aws_call("sts", "GetCallerIdentity", "success")
    counters.aws_call("secretsmanager", "GetSecretValue", "auth")
    counters.db_connection_opened("writer")
    samples = parse(render(build_registry(AgentState(make_config(), PAIRS), counters)).decode())
    calls = "health_agent_aws_api_calls_total"
    assert value(samples, calls, service="sts", operation="GetCallerIdentity", outcome="success") == 2
    assert value(samples, calls, service="secretsmanager", operation="GetSecretValue", outcome="auth") == 1
    assert value(samples, "health_agent_db_connections_opened_total", target="writer") == 1


async def test_promtool_accepts_the_exposition() -> None:
    """`promtool check metrics` finds no problem in the real /metrics output (all families present)."""
    promtool = await asyncio.to_thread(shutil.which, "promtool")
    if promtool is None:
        pytest.fail(f"promtool not found: install the Debian package `{PROMTOOL_PACKAGE}` (gives /usr/bin/promtool)")
    state = ready_state()
    state.record(failed())
    async with serve(state) as base:
        reply = await fetch(f"{base}/metrics")
    counters = CallCounters()
    counters.aws_call("sts", "GetCallerIdentity", "success")
    counters.db_connection_opened("writer")
    with_costs = render(build_registry(state, counters))
    for exposition in (reply.body, with_costs):
        command = [promtool, "check", "metrics"]
        checked = await asyncio.to_thread(subprocess.run, command, input=exposition, capture_output=True, timeout=10)
        assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
