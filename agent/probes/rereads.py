"""When the database probe may read its secret again after a rejected login (GetSecretValue is billed per call).

Once per rejection streak: the first rejected login re-reads AWSCURRENT (and AWSPENDING when AWSCURRENT is
unchanged, see agent.probes.rotation), which catches a rotation made since the last read. Later rejections of the
same streak read nothing: the secret probe's own cadence (AGENT_SECRET_REFRESH_SECONDS) catches a later change. A
streak ends when a login with the secret passes.

A rotation in progress (the database takes AWSPENDING while AWSCURRENT is rejected) is followed a little closer,
so that finishSecret is seen: the secret is read again once the time since the last read reaches a quarter of the
rotation's age (each gap at least 4/3 of the one before: about 8 re-reads for a rotation stuck 10 minutes and 24 for
one stuck a day at the defaults' login backoff; 21 and 39 with a login every second), and once when the rotation
passes AGENT_ROTATION_STUCK_SECONDS, so `stuck` is never said on an old read.
"""

from __future__ import annotations

from collections.abc import Callable

from agent.probes.base import now
from agent.probes.rotation import RotationWatch

ROTATION_REREAD_SHARE = 0.25  # of the rotation's age: finishSecret is seen within a quarter of how long it took


class SecretRereads:
    """One database probe's re-reads of its secret in the current rejection streak. Times are monotonic seconds."""

    def __init__(self, rotation: RotationWatch | None, clock: Callable[[], float] = now) -> None:
        self._rotation = rotation
        self._clock = clock
        self.last: float | None = None  # this streak's last re-read; None: none yet

    def allowed(self) -> bool:
        """Whether a rejected login may read the secret again now."""
        if self.last is None:
            return True
        watch = self._rotation
        if watch is None or watch.since is None:  # no rotation in progress: the streak had its re-read
            return False
        moment = self._clock()
        age, gap = moment - watch.since, moment - self.last
        stuck_unread = age > watch.stuck_after_seconds >= self.last - watch.since
        return gap >= age * ROTATION_REREAD_SHARE or stuck_unread

    def taken(self) -> None:
        """A re-read is being made."""
        self.last = self._clock()

    def streak_ended(self) -> None:
        """A login with the secret passed: the next rejection may read it again."""
        self.last = None
