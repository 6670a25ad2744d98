"""AgentState: per-probe records, the cached immutable snapshot, the AWS identity, the stall rule."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from pydantic import SecretStr

from agent.config.dsn import Engine, SslMode
from agent.config.models import ReadinessPolicy, TargetConfig
from agent.runtime.readiness import Status
from agent.runtime.state import DURATION_BUCKETS, AgentState
from agent.shared.reasons import Reason
from tests.support.results import PAIRS, failed, make_config, passed, view


def test_expected_probes_are_listed_before_they_run() -> None:
    """Every expected pair shows up, in registration order, with no result and status starting."""
    state = AgentState(make_config(), PAIRS)
    snapshot = state.snapshot()
    assert snapshot.status is Status.STARTING and not snapshot.http_ok
    assert [(v.probe, v.target, v.last) for v in snapshot.probes] == [
        ("credentials", "aws", None),
        ("db", "writer", None),
    ]


def test_counters_follow_passes_and_failures() -> None:
    """consecutive_failures/successes count runs in a row; passed_once and last_success stick."""
    state = AgentState(make_config(), PAIRS)
    ok = passed()
    state.record(ok)
    state.record(failed())
    state.record(failed())
    entry = view(state)
    assert (entry.consecutive_failures, entry.consecutive_successes) == (2, 0)
    assert entry.passed_once and entry.last_success == ok.finished_at
    state.record(passed())
    entry = view(state)
    assert (entry.consecutive_failures, entry.consecutive_successes) == (0, 1)


def test_failures_by_reason_are_monotonic_and_complete() -> None:
    """Every reason is present (zeros included) and counts never reset on a pass."""
    state = AgentState(make_config(), PAIRS)
    for result in (
        failed(reason=Reason.AUTH),
        passed(),
        failed(reason=Reason.TIMEOUT),
        failed(reason=Reason.AUTH),
    ):
        state.record(result)
    failures = view(state).failures
    assert set(failures) == set(Reason)
    assert failures[Reason.AUTH] == 2 and failures[Reason.TIMEOUT] == 1 and failures[Reason.DNS] == 0


def test_snapshot_is_cached_until_something_changes() -> None:
    """Reads without changes return the same object; a heartbeat is not a change; a result or drain is."""
    state = AgentState(make_config(), PAIRS)
    first = state.snapshot()
    state.heartbeat()
    assert state.snapshot() is first
    state.record(passed())
    second = state.snapshot()
    assert second is not first and state.snapshot() is second
    state.start_draining()
    assert state.snapshot().status is Status.DRAINING


def test_readiness_follows_thresholds_through_the_state() -> None:
    """starting -> ready -> (below threshold) ready -> degraded -> ready, with the config's thresholds."""
    state = AgentState(make_config(failure_threshold=2), PAIRS)
    state.record(passed("credentials", "aws"))
    assert state.snapshot().status is Status.STARTING
    state.record(passed())
    assert state.snapshot().status is Status.READY
    state.record(failed(reason=Reason.NETWORK))
    assert state.snapshot().status is Status.READY
    state.record(failed(reason=Reason.NETWORK))
    assert state.snapshot().status is Status.DEGRADED and state.snapshot().http_ok
    state.record(passed())
    assert state.snapshot().status is Status.READY


def test_strict_policy_from_config() -> None:
    """readiness_policy=strict makes a network failure at the threshold not_ready."""
    state = AgentState(make_config(failure_threshold=1, readiness_policy=ReadinessPolicy.STRICT), [("db", "writer")])
    state.record(passed())
    state.record(failed(reason=Reason.NETWORK))
    assert state.snapshot().status is Status.NOT_READY


def test_unexpected_pair_is_registered_on_the_fly() -> None:
    """A result for a pair the state was not told to expect is kept and counts for readiness."""
    state = AgentState(make_config(), [])
    state.record(passed("db", "reader"))
    assert [(v.probe, v.target) for v in state.snapshot().probes] == [("db", "reader")]
    assert state.snapshot().status is Status.READY


def test_duration_histogram_buckets_with_le_semantics() -> None:
    """A duration equal to a bound lands in that bucket; beyond the last bound lands in +Inf."""
    state = AgentState(make_config(), PAIRS)
    for ms in (5.0, 5.1, 20_000.0):
        state.record(passed(duration_ms=ms))
    histogram = view(state).durations
    assert len(histogram.counts) == len(DURATION_BUCKETS) + 1
    assert histogram.counts[0] == 1 and histogram.counts[1] == 1 and histogram.counts[-1] == 1
    assert histogram.count == 3 and abs(histogram.total_seconds - 20.0101) < 1e-9


def test_memory_is_bounded_and_not_run_results_take_no_time() -> None:
    """Thousands of runs keep a fixed-size histogram; skipped (not_run) results are not observed."""
    state = AgentState(make_config(), PAIRS)
    for _ in range(5000):
        state.record(passed())
    state.record(failed(code="not_run"))
    histogram = view(state).durations
    assert histogram.count == 5000 and len(histogram.counts) == len(DURATION_BUCKETS) + 1
    assert view(state).failures[Reason.AUTH] == 1


def test_aws_identity_comes_from_the_credentials_probe() -> None:
    """A passing credentials probe sets the identity; a later failure keeps the last known one."""
    state = AgentState(make_config(), PAIRS)
    state.record(passed("secret", "writer", details={"arn": "arn:aws:secretsmanager:eu-west-1:1:secret:x"}))
    assert state.snapshot().aws is None
    details = {"provider": "container-role", "account": "123456789012", "arn": "arn:aws:sts::123456789012:x"}
    state.record(passed("credentials", "aws", details={**details, "expires_at": "2030-01-02T03:04:05Z"}))
    state.record(failed("credentials", "aws", reason=Reason.NETWORK))
    aws = state.snapshot().aws
    assert aws is not None
    assert (aws.provider, aws.account, aws.arn) == (
        "container-role",
        "123456789012",
        "arn:aws:sts::123456789012:x",
    )
    assert aws.expires_at == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_expiry_without_zone_is_utc_and_garbage_is_ignored() -> None:
    """A naive expiry is read as UTC; an unparsable one is dropped, not raised."""
    state = AgentState(make_config(), PAIRS)
    state.record(passed("credentials", "aws", details={"expires_at": "2030-01-02T03:04:05"}))
    aws = state.snapshot().aws
    assert aws is not None and aws.expires_at == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    state.record(passed("credentials", "aws", details={"expires_at": "next tuesday", "provider": "env"}))
    aws = state.snapshot().aws
    assert aws is not None and aws.expires_at is None and aws.provider == "env"


def test_optional_targets_never_make_the_state_503() -> None:
    """A `critical: false` target's failures show in the failing list but leave /ready 200 (degraded)."""
    replica = TargetConfig(
        name="replica",
        engine=Engine.POSTGRESQL,
        host="h",
        port=5432,
        database="d",
        user="u",
        sslmode=SslMode.PREFER,
        password=SecretStr("pw"),
        dsn="postgresql://u@h:5432/d",
        critical=False,
    )
    state = AgentState(make_config(targets=(replica,), failure_threshold=1), [("db", "writer"), ("db", "replica")])
    state.record(passed())
    assert state.snapshot().status is Status.READY  # the optional target has not run yet: not waited for
    state.record(failed(target="replica", reason=Reason.AUTH))
    snapshot = state.snapshot()
    assert (snapshot.status, snapshot.http_ok) == (Status.DEGRADED, True)
    assert [(f.target, f.reason, f.scope) for f in snapshot.failing] == [("replica", "auth", "task")]
    assert not view(state, target="replica").critical and view(state).critical


def test_stalled_after_missed_heartbeats() -> None:
    """stalled() turns true once no heartbeat came for max(3 x interval, floor); a heartbeat clears it."""
    state = AgentState(make_config(interval_seconds=0.1), PAIRS, stall_floor_seconds=0.05)
    assert not state.stalled()
    time.sleep(0.35)
    assert state.stalled()
    state.heartbeat()
    assert not state.stalled()
