"""The failure vocabulary every probe shares: a fixed Reason, a stable code, a redacted message."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from agent.shared.redact import one_line


class Reason(StrEnum):
    """Why a probe failed. Fixed: dashboards, alerts and the readiness policy key on these values."""

    AUTH = "auth"  # credentials were rejected (DB login, STS keys, Secrets Manager access)
    NETWORK = "network"  # refused, reset, unreachable
    DNS = "dns"  # the name does not resolve
    TIMEOUT = "timeout"  # no answer in time: the usual face of a security group
    TLS = "tls"  # TLS required but refused, failed, or not negotiated
    CONFIG = "config"  # this task's configuration cannot work (no credentials, unknown database, ...)
    THROTTLED = "throttled"  # AWS throttling
    SERVER = "server"  # the server is up but refuses for its own reasons (too many connections, 5xx)
    UNKNOWN = "unknown"


class Scope(StrEnum):
    """Whether a replacement task could fix a failure. Fixed: the `gate` policy's 503, alerts and dashboards key
    on these values."""

    TASK = "task"  # this task's own: a fresh secret, a corrected task definition, a restarted backend fixes it
    SHARED = "shared"  # every task sees it (an outage, throttling, a rotation): replacing tasks fixes nothing


# Problems a replacement task can fix (a fresh secret, a corrected task definition). Everything else is a
# shared dependency failing, which restarting every task in a fleet would not fix.
TASK_LOCAL_REASONS = frozenset({Reason.AUTH, Reason.CONFIG})


def default_scope(reason: Reason) -> Scope:
    """The scope a failure has unless its probe or its code says otherwise: `task` for auth and config."""
    return Scope.TASK if reason in TASK_LOCAL_REASONS else Scope.SHARED


# The code of a result for a probe that did not run because one it depends on failed (it carries that
# probe's reason, so readiness and alerts see the root cause, but no duration).
NOT_RUN_CODE = "not_run"


@dataclass(frozen=True, slots=True)
class Failure:
    """A classified failure: what went wrong, in a stable code, with a message safe to show."""

    reason: Reason
    code: str
    message: str
    scope: Scope | None = None  # None: the probe's scope, else default_scope(reason)
    details: Mapping[str, str] = field(default_factory=dict)  # non-secret facts, e.g. the login backoff


class ProbeFailure(Exception):
    """Raised by a probe that has itself recognised what is wrong; the edge records it as is."""

    def __init__(
        self,
        reason: Reason,
        code: str,
        message: str,
        scope: Scope | None = None,
        details: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.failure = Failure(reason, code, message, scope, details or {})


def describe(exc: BaseException) -> str:
    """A one-line description of an exception: its type and its text (redacted, cut to MAX_TEXT, then on one
    line), never a traceback."""
    text = one_line(str(exc))
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and its causes (`__cause__`, else `__context__`), outermost first, each exception once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__
