"""agent.probes.pacing: the backoff and the re-login spread as pure functions, and one probe's LoginGate."""

from __future__ import annotations

import random

import pytest

from agent.probes.pacing import LoginGate, LoginPacing, backoff_delay, relogin_delay, spread_for
from agent.shared.reasons import Failure, Reason, Scope

REJECTED = Failure(Reason.AUTH, "pg:28P01", "password authentication failed", None)
THROTTLED = Failure(Reason.THROTTLED, "pg:throttled", "too many competing requests", None)
REFUSED = Failure(Reason.NETWORK, "db:refused", "connection refused", None)
CLOSED = Failure(Reason.NETWORK, "db:connection_lost", "the server closed the kept connection", None)


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def gate(
    threshold: int = 3, interval: float = 10.0, cap: float = 300.0, spread: float = 30.0
) -> tuple[LoginGate, Clock]:
    clock = Clock()
    return LoginGate(LoginPacing(interval, threshold, cap, spread, rng=random.Random(0)), clock), clock


def test_backoff_is_full_jitter_capped() -> None:
    """Uniform in [0, min(cap, base * 2 ** attempt)): the ceiling doubles, then stops at the cap."""
    rng = random.Random(1)
    for attempt, ceiling in [(1, 20.0), (2, 40.0), (5, 300.0), (200, 300.0)]:
        draws = [backoff_delay(attempt, 10.0, 300.0, rng) for _ in range(2_000)]
        assert min(draws) >= 0 and max(draws) < ceiling
        assert max(draws) > 0.95 * ceiling and sum(draws) / len(draws) == pytest.approx(ceiling / 2, rel=0.1)


def test_relogin_delay_is_uniform_in_the_spread_and_zero_without_one() -> None:
    rng = random.Random(2)
    draws = [relogin_delay(30.0, rng) for _ in range(2_000)]
    assert min(draws) >= 0 and max(draws) < 30 and sum(draws) / len(draws) == pytest.approx(15, rel=0.1)
    assert relogin_delay(0.0, rng) == 0.0


def test_spread_for_a_fleet_keeps_it_under_a_share_of_rds_iam_logins() -> None:
    """N tasks / (20 % of 200 logins/s): 25 s for 1,000 tasks, 250 s for 10,000."""
    assert (spread_for(1_000), spread_for(10_000)) == (25.0, 250.0)


def test_the_first_threshold_rejections_are_not_held_back_then_the_backoff_starts() -> None:
    """Confirmations stay fast: no wait below the threshold; at it, a jittered wait of at most 2 intervals."""
    login, clock = gate(threshold=3)
    for _ in range(2):
        login.login_failed(REJECTED)
        assert login.wait() == 0.0
    login.login_failed(THROTTLED)  # throttled counts like rejected
    assert 0 < login.wait() <= 20.0 and login.rejections == 3
    held = login.backing_off(login.wait())
    assert (held.reason, held.code) == (Reason.THROTTLED, "pg:throttled")
    assert "backing off" in held.message and held.details["rejected_logins"] == "3"
    clock.now += 20.0
    assert login.wait() == 0.0


def test_the_held_failure_keeps_its_scope() -> None:
    """A rotation in progress (auth, shared) stays shared while the probe backs off."""
    login, _ = gate(threshold=1)
    login.login_failed(Failure(Reason.AUTH, "secret:rotation_in_progress", "AWSPENDING logs in", Scope.SHARED))
    assert login.backing_off(login.wait()).scope is Scope.SHARED


def test_a_passing_login_starts_the_count_again_and_other_failures_do_not_count() -> None:
    login, _ = gate(threshold=1)
    login.login_failed(REFUSED)
    assert (login.rejections, login.wait()) == (0, 0.0)  # nothing reached the server's authentication
    login.login_failed(REJECTED)
    assert login.rejections == 1
    login.login_passed()
    assert login.rejections == 0


def test_a_lost_connection_holds_logins_for_the_drawn_delay_once() -> None:
    """The delay is drawn once (random.Random(0)'s first draw, 0.8444 of the spread); the next login attempt clears
    the lost state."""
    login, clock = gate(spread=30.0)
    delay = login.connection_lost(CLOSED)
    assert delay == pytest.approx(random.Random(0).uniform(0, 30)) and login.wait() == pytest.approx(delay)
    assert (login.lost_at, login.lost) == (clock.now, CLOSED)
    clock.now += delay
    assert login.wait() == 0.0
    login.login_failed(REFUSED)  # the server is still down: reported as itself from now on
    assert (login.lost_at, login.lost) == (None, None)


def test_without_pacing_nothing_is_ever_held_back() -> None:
    """`check` logs in every run."""
    login = LoginGate(None)
    for _ in range(10):
        login.login_failed(REJECTED)
    assert (login.connection_lost(CLOSED), login.wait()) == (0.0, 0.0)
