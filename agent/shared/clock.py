"""How far this task's clock is from AWS's: the `Date` header of every AWS answer, against the local clock.

SigV4 requests, and so every RDS IAM token, are refused when the signer's clock is more than 5 minutes off
("Signature expired: ... is now earlier than ..." / "Signature not yet current: ..."; AWS General Reference,
"Signing AWS API requests"). Written by a botocore `after-call` handler (agent.aws.clock), read by the credentials
probe, the database probe's hints and the snapshot (/status, /metrics).
"""

from __future__ import annotations

from dataclasses import dataclass

# AWS refuses a signature beyond 5 minutes of skew: the agent fails a minute earlier, while calls still work.
CLOCK_SKEW_LIMIT_SECONDS = 240.0
AWS_SIGNATURE_WINDOW_SECONDS = 300.0


@dataclass(slots=True)
class ClockSkew:
    """The last measured skew, in seconds: server minus local (positive: this clock is behind AWS's).

    The `Date` header has a resolution of one second, and the answer's travel time is counted as skew: a reading
    is good to about a second, which is plenty against a limit of minutes. Plain floats on the event loop thread.
    """

    seconds: float | None = None  # None before any AWS answer with a Date header

    def note(self, server_time: float, local_time: float) -> None:
        """Record one answer's `Date` (as Unix seconds) and the local time it arrived."""
        self.seconds = round(server_time - local_time, 1)

    @property
    def excessive(self) -> bool:
        """Whether the last reading is beyond CLOCK_SKEW_LIMIT_SECONDS either way."""
        return self.seconds is not None and abs(self.seconds) > CLOCK_SKEW_LIMIT_SECONDS

    def describe(self) -> str:
        """`clock skew +361.0 s: this clock is 361 s behind AWS's`; '' when unknown."""
        if self.seconds is None:
            return ""
        side = "behind" if self.seconds > 0 else "ahead of"
        return f"clock skew {self.seconds:+.1f} s: this clock is {abs(self.seconds):.0f} s {side} AWS's"


CLOCK = ClockSkew()
