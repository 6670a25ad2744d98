"""Can this task sign an RDS IAM auth token for its database user? (local signing: no request to AWS)"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import ClassVar

from pydantic import SecretStr

from agent.aws.clients import RDS_TOKEN_EXPIRES_SECONDS, AwsClients
from agent.aws.hints import aws_hint, call_facts
from agent.config.dsn import region_from_host
from agent.config.facts import target_facts
from agent.config.models import TargetConfig
from agent.probes.base import NOTE, Details, TargetState, now
from agent.probes.credentials import credential_facts
from agent.probes.iam_login import token_host_note
from agent.shared.reasons import Failure, ProbeFailure, Reason, Scope
from agent.shared.redact import SECRETS

IAM_LOGIN_HINT = (
    "test the token by hand: `aws rds generate-db-auth-token --hostname {host} --port {port} --username"
    " {user} --region {region}`; the task role needs `rds-db:connect` on"
    " arn:aws:rds-db:{region}:{account}:dbuser:{DbiResourceId}/{user} (the DbiResourceId:"
    " `aws rds describe-db-instances --region {region}"
    " --query 'DBInstances[?Endpoint.Address==`{host}`].DbiResourceId'`)"
)
_HINTS = {
    "token:region_mismatch": (
        "set AGENT_AWS_REGION={host_region} (or aws_iam_auth.region): {host} is in {host_region} but the"
        " token would be signed for {configured_region}, and the database rejects it like a wrong password"
    ),
    "token:no_user": "name the database user in the DSN or AGENT_DB_USER: the token is signed for one user",
    "token:no_region": "set AGENT_AWS_REGION to the database's region",
    "config": IAM_LOGIN_HINT,
    "auth": IAM_LOGIN_HINT,
}


class TokenProbe:
    """Signs an RDS IAM auth token for target.user and hands it to the database probe.

    Signing is local: it only fails without credentials, and a bad token shows only at login. With
    `regenerate_after_seconds` (continuous mode, e.g. 600 of the 900 s lifetime) a younger token is reused.
    """

    name: ClassVar[str] = "token"
    failure_scope: ClassVar[Scope | None] = None  # by reason

    def __init__(
        self,
        target: TargetConfig,
        state: TargetState,
        aws: AwsClients,
        regenerate_after_seconds: float | None = None,
    ) -> None:
        self.target = target.name
        self._config = target
        self._state = state
        self._aws = aws
        self._regenerate_after = regenerate_after_seconds
        self._step = "not started"
        self._generated_wall: float | None = None  # time.time() of the current token, for expires_at

    @property
    def step(self) -> str:
        """What the probe is doing right now."""
        return self._step

    @property
    def host_region(self) -> str | None:
        """The region in the RDS host name the token is signed for, if that is an RDS endpoint."""
        return region_from_host(self._config.token_host)

    async def run(self) -> Details:
        """Check the region, then reuse a young token or sign a new one."""
        self._step = "checking the region"
        region, user = self._region_and_user()
        state = self._state
        age = now() - state.token_generated_at if state.token_generated_at is not None else None
        if state.token is not None and age is not None and self._young(age):
            return self._details(region, user, reused=True, age=age)
        self._step = f"signing an RDS auth token for {user} in {region}"
        config = self._config
        token = await self._aws.generate_db_auth_token(config.token_host, config.token_port, user, region)
        SECRETS.add(token)
        state.token, state.token_generated_at = SecretStr(token), now()
        self._generated_wall = time.time()
        return self._details(region, user, reused=False, age=0.0)

    def _young(self, age: float) -> bool:
        return self._regenerate_after is not None and age < self._regenerate_after

    def _region_and_user(self) -> tuple[str, str]:
        configured, host_region = self._config.configured_region, self.host_region
        if configured and host_region and configured != host_region:
            raise ProbeFailure(
                Reason.CONFIG,
                "token:region_mismatch",
                f"the database host {self._config.token_host} is in {host_region} but the agent is configured for"
                f" {configured}: a token signed for {configured} is rejected",
            )
        region = host_region or self._config.region
        if region is None:
            raise ProbeFailure(Reason.CONFIG, "token:no_region", "no AWS region to sign the token for")
        if self._config.user is None:
            raise ProbeFailure(Reason.CONFIG, "token:no_user", "no database user to sign the token for")
        return region, self._config.user

    def _details(self, region: str, user: str, *, reused: bool, age: float) -> Details:
        details = {"region": region, "user": user, "reused": "true" if reused else "false"}
        if self._config.iam_host is not None:  # signed for another name than the connection's
            details["signed_for"] = f"{self._config.token_host}:{self._config.token_port}"
        details["age_seconds"] = f"{age:.0f}"
        if self._generated_wall is not None:
            expires = datetime.fromtimestamp(self._generated_wall + RDS_TOKEN_EXPIRES_SECONDS, UTC)
            details["expires_at"] = expires.isoformat()
        if note := token_host_note(self._config):  # `check` says it before the login fails
            details[NOTE] = note
        return details

    def classify(self, exc: BaseException) -> Failure | None:
        """Map a botocore exception through the AWS table (signing needs the task's credentials)."""
        return self._aws.classify(exc, "rds")

    def hint(self, failure: Failure) -> str:
        """The next step, with this target's host, port, user and regions filled in."""
        facts = {**target_facts(self._config), **credential_facts(self._aws, None), **call_facts(failure, "rds")}
        facts.update(host_region=self.host_region or "<host region>", host=self._config.token_host)
        facts["configured_region"] = self._config.configured_region or "<region>"
        return aws_hint(failure, facts, _HINTS)
