"""What a database login learned beyond "it answers": the facts that break next (issue: diagnose what breaks next).

The database probe reads these on the login it makes anyway (a fresh login, every AGENT_DB_REAUTH_SECONDS in
continuous mode) and hands them on in its details, as strings, so `check` prints them like every other detail. A
kept connection's runs carry the facts of the login that opened it: no query is added per interval.

Every output reads them back through `DbFacts.from_details`: /metrics (`health_agent_db_*`), /status (`database`),
the status page and `check` (the warnings).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

# The details keys, as `check` prints them.
RESOLVED_ADDRESS = "resolved_address"  # the address the host name resolved to and the login reached
READ_ONLY = "read_only"  # "yes" (a standby, or a read-only server) or "no"
CERTIFICATE_NOT_AFTER = "certificate_not_after"  # ISO 8601 UTC, the server certificate's notAfter
CERTIFICATE_SUBJECT = "certificate_subject"
CERTIFICATE_ISSUER = "certificate_issuer"
PASSWORD_EXPIRES_AT = "password_expires_at"  # ISO 8601 UTC, "never", or "unknown (why)"
CONNECTIONS = "connections"  # sessions open on the server now
MAX_CONNECTIONS = "max_connections"  # sessions a login like ours may open (reserved slots taken off)

NEVER = "never"
PASSWORD_WARNING_DAYS = 14  # /status warns this long before the password expires
CERTIFICATE_WARNING_DAYS = 30  # and before the server certificate does (the alert rule's figure too)
CONNECTIONS_WARNING_RATIO = 0.9  # and when this share of max_connections is in use
_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class DbFacts:
    """One target's facts, typed. Every field is None when the login did not (or could not) read it."""

    resolved_address: str | None = None
    read_only: bool | None = None
    certificate_not_after: datetime | None = None
    certificate_subject: str | None = None
    certificate_issuer: str | None = None
    password_expires_at: datetime | None = None  # None: never, or not known (see password_expiry)
    password_expiry: str | None = None  # the detail as given: an ISO time, "never" or "unknown (why)"
    connections: int | None = None
    max_connections: int | None = None

    @classmethod
    def from_details(cls, details: Mapping[str, str]) -> DbFacts:
        """Read the facts back from a result's details; a value that does not parse counts as absent."""
        read_only = details.get(READ_ONLY)
        expiry = details.get(PASSWORD_EXPIRES_AT)
        return cls(
            resolved_address=details.get(RESOLVED_ADDRESS),
            read_only=None if read_only is None else read_only == "yes",
            certificate_not_after=_time(details.get(CERTIFICATE_NOT_AFTER)),
            certificate_subject=details.get(CERTIFICATE_SUBJECT),
            certificate_issuer=details.get(CERTIFICATE_ISSUER),
            password_expires_at=_time(expiry),
            password_expiry=expiry,
            connections=_count(details.get(CONNECTIONS)),
            max_connections=_count(details.get(MAX_CONNECTIONS)),
        )

    @property
    def empty(self) -> bool:
        """Whether nothing was learned (a probe other than the database's, or a login that read nothing)."""
        return self == DbFacts()

    def warnings(self, now: float) -> list[str]:
        """What a person should act on before it breaks, one sentence each (`now` is Unix seconds)."""
        found = []
        if self.certificate_not_after is not None:
            found += _expiry("the server's TLS certificate", self.certificate_not_after, now, CERTIFICATE_WARNING_DAYS)
        if self.password_expires_at is not None:
            found += _expiry("the login's password", self.password_expires_at, now, PASSWORD_WARNING_DAYS)
        if self.connections is not None and self.max_connections:
            used = self.connections / self.max_connections
            if used >= CONNECTIONS_WARNING_RATIO:
                found.append(
                    f"{self.connections} of {self.max_connections} connections in use ({used:.0%}): new logins"
                    " are refused when none are left"
                )
        return found

    def as_dict(self) -> dict[str, object]:
        """The JSON shape of /status's `database` entry (times in ISO 8601 UTC); absent facts are left out."""
        shape: dict[str, object | None] = {
            "resolved_address": self.resolved_address,
            "read_only": self.read_only,
            "certificate": _certificate(self),
            "password_expires_at": self.password_expiry,
            "connections": self.connections,
            "max_connections": self.max_connections,
        }
        return {key: value for key, value in shape.items() if value is not None}


def iso(moment: datetime) -> str:
    """The details' time format: ISO 8601 in UTC, to the second."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _certificate(facts: DbFacts) -> dict[str, str] | None:
    if facts.certificate_not_after is None:
        return None
    shape = {"not_after": iso(facts.certificate_not_after)}
    shape |= {"subject": facts.certificate_subject} if facts.certificate_subject else {}
    return shape | ({"issuer": facts.certificate_issuer} if facts.certificate_issuer else {})


def _expiry(what: str, moment: datetime, now: float, warn_days: int) -> list[str]:
    left = moment.timestamp() - now
    if left <= 0:
        return [f"{what} expired on {iso(moment)}"]
    if left > warn_days * _DAY:
        return []
    return [f"{what} expires in {left / _DAY:.1f} days, on {iso(moment)}"]


def _time(text: str | None) -> datetime | None:
    if not text or text == NEVER:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None  # "unknown (...)"
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _count(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None
