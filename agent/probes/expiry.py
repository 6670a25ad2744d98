"""A rejected login that the password's expiry explains, told with the expiry an earlier login read.

MySQL and MariaDB say an expired password is expired (errno 1862 at login, 1820 on every statement: the driver
table's `db:password_expired`). PostgreSQL does not: a role whose VALID UNTIL has passed is refused with the
28P01 of a wrong password (auth.c; the reason is in the server's log only). The database probe reads the expiry
at every fresh login (agent.probes.drivers.limits), so after one successful login the agent knows it: a 28P01
for that role once the moment has passed is the expiry, and a 28P01 for the very password that logged in before
means the server side changed (its password, or its VALID UNTIL), not the task's secret.

An expired password is `shared`: every task has the same one, and a replacement task is refused the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from agent.probes.base import Login
from agent.probes.db_facts import PASSWORD_EXPIRES_AT, DbFacts, iso
from agent.shared.reasons import Failure, ProbeFailure, Reason, Scope

EXPIRED = "db:password_expired"
_KEY = secrets.token_bytes(32)  # per process: a fingerprint means nothing outside it


class PasswordExpiry:
    """The password expiry the last successful login read, per target, to explain a later rejection.

    `reads_as` is the driver's code for a refusal that an expiry hides behind (PostgreSQL's "pg:28P01"), or None
    when the server says so itself.
    """

    def __init__(self, reads_as: str | None) -> None:
        self.reads_as = reads_as
        self.user: str | None = None
        self.expires_at: datetime | None = None  # None: never, or not known
        self.logged_in_at: float | None = None  # Unix seconds of that login
        self._fingerprint = b""

    def seen(self, login: Login, details: Mapping[str, str]) -> None:
        """A login passed and read `details`: keep its user, expiry and a keyed fingerprint of its password."""
        if PASSWORD_EXPIRES_AT not in details:  # an IAM token has no expiry of its own to read
            return
        self.user = login.user
        self.expires_at = DbFacts.from_details(details).password_expires_at
        self.logged_in_at = time.time()
        self._fingerprint = _fingerprint(login)

    def facts(self) -> dict[str, str]:
        """For hints: " on <when>" the password expired, when an earlier login read a moment now past; else
        nothing (an admin's PASSWORD EXPIRE comes before the date read)."""
        passed = self.expires_at is not None and self.expires_at.timestamp() <= time.time()
        return {"password_expiry": f" on {iso(self.expires_at)}" if self.expires_at and passed else ""}

    def explain(self, failure: Failure, login: Login | None) -> ProbeFailure | None:
        """The failure to raise instead of `failure`, or None when the expiry does not explain it."""
        if failure.code == EXPIRED:  # the server said so: add what the agent read before, and the scope
            return ProbeFailure(Reason.AUTH, EXPIRED, failure.message + self._known(), Scope.SHARED)
        if failure.code != self.reads_as or login is None or login.user != self.user or self.logged_in_at is None:
            return None
        since = iso(datetime.fromtimestamp(self.logged_in_at, UTC))
        if self.expires_at is not None and self.expires_at.timestamp() <= time.time():
            message = (
                f"the password of {login.user} expired on {iso(self.expires_at)} (VALID UNTIL, read at the login at"
                f" {since}); the server refuses it as a wrong one: {failure.message}"
            )
            return ProbeFailure(Reason.AUTH, EXPIRED, message, Scope.SHARED)
        if hmac.compare_digest(_fingerprint(login), self._fingerprint):
            note = (
                f"; this same password logged in as {login.user} at {since}: the role's password or VALID UNTIL"
                " was changed on the server since"
            )
            return ProbeFailure(failure.reason, failure.code, failure.message + note, failure.scope)
        return None

    def _known(self) -> str:
        if self.expires_at is None or self.logged_in_at is None:
            return ""
        since = iso(datetime.fromtimestamp(self.logged_in_at, UTC))
        return f"; the login at {since} read that it would expire on {iso(self.expires_at)}"


def _fingerprint(login: Login) -> bytes:
    """A keyed hash of the password: compares a later login's password with this one without keeping it."""
    return hmac.new(_KEY, login.password.get_secret_value().encode(), hashlib.sha256).digest()
