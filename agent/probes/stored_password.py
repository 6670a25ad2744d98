"""What the secret and parameter probes share: a password read from AWS into the target's state, then reused.

Both read their value into `TargetState` (secret_password, secret_fetched_at), where the database probe logs in
with it; both reuse it for `refresh_seconds` (AGENT_SECRET_REFRESH_SECONDS), and `state.clear_secret()` forces the
next read (a rejected login: agent.probes.rereads).
"""

from __future__ import annotations

from typing import ClassVar

from agent.aws.clients import AwsClients
from agent.config.dsn import arn_region
from agent.config.models import TargetConfig
from agent.probes.base import Details, TargetState, now
from agent.shared.reasons import ProbeFailure, Reason


class StoredPassword:
    """The cache, the step and the region of a probe that reads the password from Secrets Manager or SSM."""

    stored_in: ClassVar[str]  # what holds the password, as the step says it: "secret", "parameter"

    def __init__(
        self,
        target: TargetConfig,
        state: TargetState,
        aws: AwsClients,
        reference: str,
        refresh_seconds: float | None,
    ) -> None:
        self.target = target.name
        self._config = target
        self._reference = reference  # the secret id or the parameter name, as configured (a name or an ARN)
        self._state = state
        self._aws = aws
        self._refresh = refresh_seconds
        self._step = "not started"
        self._details: dict[str, str] = {}
        self.arn: str | None = None  # the full ARN, once AWS has told us

    @property
    def step(self) -> str:
        """What the probe is doing right now."""
        return self._step

    @property
    def region(self) -> str | None:
        """Where the password lives: the ARN's region if the reference is an ARN, else the target's region."""
        return arn_region(self._reference) or self._config.region

    def _cached(self) -> Details | None:
        """The last read's details while it is younger than `refresh_seconds`; None when it is due (or never)."""
        state = self._state
        if self._refresh is None or state.secret_password is None or state.secret_fetched_at is None:
            return None
        age = now() - state.secret_fetched_at
        if age >= self._refresh:
            return None
        self._step = f"using the cached {self.stored_in}"
        return {**self._details, "cached": "true", "age_seconds": f"{age:.0f}"}

    def _region_to_read(self) -> str:
        """The region of the next read; `<stored_in>:no_region` (config) when none is known."""
        region = self.region
        if region is None:
            raise ProbeFailure(Reason.CONFIG, f"{self.stored_in}:no_region", f"no AWS region for the {self.stored_in}")
        return region
