"""When the database probe may read its secret again after a rejected login (GetSecretValue is billed per call).

A rejection streak (rejected logins with the secret, until one passes) reads the secret at each of its first
AGENT_FAILURE_THRESHOLD rejections (they come at the quick confirmation cadence, like the login backoff's first
attempts in agent.probes.pacing), which catches a secret changed since the last read or a moment after the database
(a rotation in the other order, a manual change) before the failure counts; then at doubling gaps: again once the
time since the last re-read reaches half the streak's age (from its first re-read), so a later change is seen within
the streak's age. A streak so costs a number of reads that grows with the logarithm of its length, not with every
rejected login: at the defaults' login backoff about 7 for a streak of 10 minutes and 14 for one of a day. Each
re-read is one GetSecretValue, two when AWSCURRENT is unchanged (AWSPENDING is read too, agent.probes.rotation).
The secret probe's own cadence (AGENT_SECRET_REFRESH_SECONDS) goes on as well.

A rotation in progress (the database takes AWSPENDING while AWSCURRENT is rejected) is followed closer, so that
finishSecret shows soon: a re-read once the time since the last one reaches a quarter of the rotation's age (about 8
for a rotation stuck 10 minutes at the defaults, 25 for one stuck a day), and once when the rotation passes
AGENT_ROTATION_STUCK_SECONDS, so `stuck` is never said on an old read.
"""

from __future__ import annotations

from collections.abc import Callable

from agent.probes.base import now
from agent.probes.rotation import RotationWatch

STREAK_REREAD_SHARE = 0.5  # of the streak's age: doubling gaps
ROTATION_REREAD_SHARE = 0.25  # of the rotation's age: finishSecret is seen within a quarter of how long it took


class SecretRereads:
    """One database probe's re-reads of its secret in the current rejection streak. Times are monotonic seconds."""

    def __init__(self, rotation: RotationWatch | None, quick: int = 1, clock: Callable[[], float] = now) -> None:
        self._rotation = rotation
        self._quick = quick  # AGENT_FAILURE_THRESHOLD in `serve`: the rejections that confirm a failure
        self._clock = clock
        self.first: float | None = None  # this streak's first re-read; None: no streak
        self.last: float | None = None  # and its latest
        self.count = 0  # re-reads in this streak

    def allowed(self) -> bool:
        """Whether a rejected login may read the secret again now."""
        if self.first is None or self.last is None or self.count < self._quick:
            return True
        moment = self._clock()
        gap = moment - self.last
        watch = self._rotation
        if watch is None or watch.since is None:
            return gap >= (moment - self.first) * STREAK_REREAD_SHARE
        age = moment - watch.since
        stuck_unread = age > watch.stuck_after_seconds >= self.last - watch.since
        return gap >= age * ROTATION_REREAD_SHARE or stuck_unread

    def taken(self) -> None:
        """A re-read is being made."""
        self.last = self._clock()
        self.count += 1
        if self.first is None:
            self.first = self.last

    def streak_ended(self) -> None:
        """A login with the secret passed: the next rejection starts a new streak."""
        self.first = self.last = None
        self.count = 0
