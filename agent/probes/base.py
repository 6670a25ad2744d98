"""What every probe is and returns, and the per-target state probes hand to each other."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from pydantic import SecretStr

from agent.shared.reasons import Failure, Reason, Scope

Details = Mapping[str, str]  # non-secret facts a probe learned: provider, account, TLS version, ...
NOTE = "note"  # a details key: what a person should know about a pass; it becomes the passing result's message


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """The outcome of one probe run, safe to show anywhere: the message is redacted, no secret is kept."""

    probe: str
    target: str
    ok: bool
    reason: Reason | None
    code: str
    message: str  # why it failed; for a pass, a note worth reading (e.g. the password was never checked) or ""
    hint: str
    duration_ms: float
    finished_at: float = field(default_factory=time.time)
    details: Details = field(default_factory=dict)
    scope: Scope | None = None  # of a failure: could a replacement task fix it (None when ok)

    def as_dict(self) -> dict[str, object]:
        """The JSON shape used by `check --json` and /status."""
        return {
            "probe": self.probe,
            "target": self.target,
            "ok": self.ok,
            "reason": self.reason.value if self.reason else None,
            "scope": self.scope.value if self.scope else None,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "duration_ms": round(self.duration_ms, 1),
        }


class Probe(Protocol):
    """A probe is built from its config and has one async method that returns details or raises."""

    name: ClassVar[str]
    # The scope of every failure of this probe (the backend probe: `task`), or None to decide by reason.
    failure_scope: ClassVar[Scope | None]
    target: str

    @property
    def step(self) -> str:
        """What the probe is doing right now, so a timeout can say where it stopped."""
        ...

    async def run(self) -> Details:
        """Check once; return what was learned, or raise (ProbeFailure or a driver's own exception)."""
        ...

    def classify(self, exc: BaseException) -> Failure | None:
        """Map a driver's exception to a Failure through this probe's table, or None if unknown."""
        ...

    def hint(self, failure: Failure) -> str:
        """The next step for this failure, with the user's own values filled in."""
        ...


@dataclass(slots=True)
class Login:
    """Who the database probe logs in as, and where that password came from."""

    user: str
    password: SecretStr
    source: str  # "static", "secret" or "iam": named in messages, never the value


@dataclass(slots=True)
class TargetState:
    """What the AWS probes of one target learned, for the database probe that runs after them.

    In-memory only; values are SecretStr so a repr or a log line cannot show them.
    """

    secret_user: str | None = None
    secret_password: SecretStr | None = None
    secret_fetched_at: float | None = None  # time.monotonic()
    token: SecretStr | None = None
    token_generated_at: float | None = None  # time.monotonic()

    def clear_secret(self) -> None:
        """Forget the cached secret so the next secret probe run fetches it again."""
        self.secret_user = self.secret_password = None
        self.secret_fetched_at = None


def now() -> float:
    """Monotonic seconds, for durations and cache ages."""
    return time.monotonic()
