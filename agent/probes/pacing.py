"""When the database probe may log in again: the brake that keeps a fleet of agents from a login storm.

Two situations, each with its own delay (both pure functions, so bench/fleet.py models a fleet with the very
code the agent runs):

- **Rejected or throttled logins.** The first `failure_threshold` attempts stay at the scheduler's quick
  confirmation cadence, so a wrong password is still confirmed fast. After that, each further attempt waits an
  exponential backoff with full jitter, capped at AGENT_DB_REAUTH_SECONDS ("Exponential Backoff And Jitter",
  AWS Architecture Blog, 2015: sleep = random_between(0, min(cap, base * 2 ** attempt))). While waiting, the
  probe reports the last failure again without logging in.
- **A kept connection lost** (restart, failover, terminate). Every agent of the fleet loses its connection in
  the same second; each waits a delay drawn uniformly from [0, AGENT_DB_RELOGIN_SPREAD_SECONDS) before it logs
  in again, so the logins arrive spread over that window.

RDS allows about 200 new IAM-authenticated connections per second per DB instance ("IAM database
authentication limitations", Amazon RDS User Guide). To keep a fleet of N tasks under a fraction f of that
after a failover, the spread must be at least N / (f x 200) seconds: 25 s for 1,000 tasks at 20 %, 250 s for
10,000 tasks. The default, 30 s, keeps 1,000 tasks at 33 logins/s on average (17 %), with a margin for the
randomness of the draws. The probe wakes itself at the drawn moment, so the logins follow the draws, not the
probe's cadence.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from agent.shared.reasons import Failure, Reason

IAM_LOGINS_PER_SECOND = 200.0  # RDS's limit per DB instance (Amazon RDS User Guide, IAM auth limitations)
DEFAULT_RELOGIN_SPREAD_SECONDS = 30.0  # 1,000 tasks at 17 % of IAM_LOGINS_PER_SECOND on average


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait before login attempt `attempt` (1 = the first one beyond the threshold): full jitter.

    Uniform in [0, min(cap, base * 2 ** attempt)); `base` is the probe interval, `cap` AGENT_DB_REAUTH_SECONDS.
    """
    ceiling = min(cap, base * 2.0 ** min(attempt, 62))  # the exponent is bounded: 2**63 floats overflow nothing
    return (rng or random).uniform(0.0, ceiling)


def relogin_delay(spread: float, rng: random.Random | None = None) -> float:
    """Seconds to wait before logging in again after a kept connection was lost: uniform in [0, spread)."""
    return (rng or random).uniform(0.0, spread) if spread > 0 else 0.0


def spread_for(tasks: int, share: float = 0.2, limit: float = IAM_LOGINS_PER_SECOND) -> float:
    """The AGENT_DB_RELOGIN_SPREAD_SECONDS that keeps `tasks` re-logins under `share` of `limit` per second."""
    return tasks / (share * limit)


@dataclass(frozen=True, slots=True)
class LoginPacing:
    """The settings the database probe paces its logins with (serve mode; `check` logs in every time)."""

    interval_seconds: float  # the backoff's base
    failure_threshold: int  # attempts before the backoff starts (they confirm a failure quickly)
    cap_seconds: float  # AGENT_DB_REAUTH_SECONDS
    relogin_spread_seconds: float  # AGENT_DB_RELOGIN_SPREAD_SECONDS
    rng: random.Random | None = None  # None: the random module; a seeded Random makes tests repeatable

    def after_rejections(self, rejections: int) -> float:
        """Seconds before the next attempt after `rejections` rejected or throttled logins in a row (0: now)."""
        if rejections < self.failure_threshold:
            return 0.0
        attempt = rejections - self.failure_threshold + 1
        return backoff_delay(attempt, self.interval_seconds, self.cap_seconds, self.rng)

    def after_lost_connection(self) -> float:
        """Seconds before logging in again after the kept connection was lost."""
        return relogin_delay(self.relogin_spread_seconds, self.rng)


class LoginGate:
    """One database probe's pacing state: when it may log in next, and what it reports until then.

    Times are monotonic seconds from `clock`. With `pacing` None (`check`) it never holds a login back.
    """

    def __init__(self, pacing: LoginPacing | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.pacing = pacing
        self._clock = clock
        self.rejections = 0  # rejected or throttled logins in a row
        self.not_before = 0.0  # no login before this (the backoff, or the re-login spread)
        self.lost_at: float | None = None  # when the kept connection was lost, until the next login attempt
        self.lost: Failure | None = None  # why it was lost (reported until then), while lost_at is set
        self.last_failure: Failure | None = None

    def wait(self) -> float:
        """Seconds until a login may be tried (0: now)."""
        return max(0.0, self.not_before - self._clock())

    def connection_lost(self, why: Failure) -> float:
        """The kept connection is gone (`why`: the server closed it, or it stopped answering): draw the re-login
        delay (seconds) and hold logins until then."""
        self.lost_at, self.lost = self._clock(), why
        delay = self.pacing.after_lost_connection() if self.pacing else 0.0
        self.not_before = max(self.not_before, self.lost_at + delay)
        return delay

    def login_passed(self) -> None:
        """A login worked: the count of rejections starts again."""
        self.rejections, self.lost_at, self.lost = 0, None, None

    def login_failed(self, failure: Failure | None) -> None:
        """A login attempt failed (`failure` None: unclassified); rejected or throttled ones count toward the
        backoff."""
        self.lost_at, self.lost = None, None
        if failure is None or self.pacing is None:
            return
        self.last_failure = failure
        if failure.reason in (Reason.AUTH, Reason.THROTTLED):
            self.rejections += 1
            self.not_before = self._clock() + self.pacing.after_rejections(self.rejections)

    def details(self, wait: float) -> dict[str, str]:
        """What /status shows while logins are held back."""
        return {"login_backoff_seconds": f"{wait:.1f}", "rejected_logins": str(self.rejections)}

    def backing_off(self, wait: float) -> Failure:
        """The failure to report instead of a login during the backoff: the last one, same code and scope."""
        last = self.last_failure or Failure(Reason.UNKNOWN, "db:backoff", "earlier logins failed")
        note = f"no login tried: backing off {wait:.0f}s more after {self.rejections} rejected logins in a row"
        return Failure(last.reason, last.code, f"{last.message}; {note}", last.scope, self.details(wait))
