"""A Secrets Manager rotation seen from the database: the database already takes the AWSPENDING password while
AWSCURRENT still holds the old one. Told apart from a wrong password, and timed, so that a stuck rotation reads
as stuck.

A rotation runs four steps: createSecret (a new version labelled AWSPENDING), setSecret (the database gets that
password), testSecret, finishSecret (AWSCURRENT moves to the new version). With a single-user rotation a login with
AWSCURRENT is rejected between setSecret and finishSecret; a rotation that fails after setSecret leaves it so.
Source: AWS Secrets Manager User Guide, "Rotation by Lambda function" and "Lambda rotation functions"
(https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotate-secrets_lambda-functions.html).

Both are `shared` failures: a replacement task reads the same AWSCURRENT, so replacing tasks fixes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pydantic import SecretStr

from agent.probes.base import now
from agent.shared.reasons import ProbeFailure, Reason, Scope

IN_PROGRESS = "secret:rotation_in_progress"
STUCK = "secret:rotation_stuck"
CODES = frozenset({IN_PROGRESS, STUCK})


@dataclass(frozen=True, slots=True)
class PendingSecret:
    """The AWSPENDING version of a secret. The password is a SecretStr: no repr shows it."""

    password: SecretStr
    user: str | None  # its "username", if it names one (an alternating-users rotation names the other user)
    version_id: str | None  # of AWSPENDING
    current_version_id: str | None  # of AWSCURRENT, as last read
    region: str


FetchPending = Callable[[], Awaitable[PendingSecret | None]]


class RotationWatch:
    """Reads a secret's AWSPENDING version on request and times how long the database has preferred it.

    The clock starts the first time the AWSPENDING password logs in where AWSCURRENT did not, restarts when the
    AWSPENDING version changes (a new rotation), and stops on `clear()`: AWSCURRENT logs in again, or there is
    no AWSPENDING, or it is rejected too.
    """

    def __init__(self, secret_id: str, fetch_pending: FetchPending, stuck_after_seconds: float) -> None:
        self.secret_id = secret_id
        self.fetch_pending = fetch_pending
        self.stuck_after_seconds = stuck_after_seconds
        self.last: PendingSecret | None = None
        self._since: float | None = None  # time.monotonic() of the first confirmation
        self._version: str | None = None

    def confirmed(self, pending: PendingSecret, user: str) -> ProbeFailure:
        """The AWSPENDING password logged in as `user`: the failure to raise (`stuck` past the threshold)."""
        moment = now()
        if self._since is None or pending.version_id != self._version:
            self._since, self._version = moment, pending.version_id
        self.last = pending
        age = moment - self._since
        version = f" (version {pending.version_id})" if pending.version_id else ""
        seen = (
            f"the database rejects the AWSCURRENT password of secret {self.secret_id} (read again: unchanged) but"
            f" accepts its AWSPENDING password{version} as {user}"
        )
        if age > self.stuck_after_seconds:
            message = (
                f"{seen}: the rotation has been stuck between setSecret and finishSecret for {age:.0f}s, longer"
                f" than AGENT_ROTATION_STUCK_SECONDS ({self.stuck_after_seconds:g}s)"
            )
            return ProbeFailure(Reason.AUTH, STUCK, message, scope=Scope.SHARED)
        message = f"{seen}: a rotation is in progress (setSecret done, finishSecret not yet), for {age:.0f}s so far"
        return ProbeFailure(Reason.AUTH, IN_PROGRESS, message, scope=Scope.SHARED)

    @property
    def since(self) -> float | None:
        """time.monotonic() of the first confirmation of the rotation in progress; None when none is."""
        return self._since

    def clear(self) -> None:
        """No rotation in sight: the next confirmation starts the clock afresh."""
        self._since = self._version = None

    def facts(self) -> dict[str, str]:
        """Hint values: the secret's region and its AWSPENDING and AWSCURRENT version ids, once read."""
        last = self.last
        return {
            "secret_region": last.region if last else "<region>",
            "pending_version": (last.version_id if last else None) or "<AWSPENDING version id>",
            "current_version": (last.current_version_id if last else None) or "<AWSCURRENT version id>",
        }
