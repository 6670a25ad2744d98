"""Which probes a configuration needs, in dependency order, built for one-shot or continuous use."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from agent.config.models import AgentConfig, TargetConfig
from agent.probes.base import Probe, ProbeResult, TargetState
from agent.probes.rotation import RotationWatch

if TYPE_CHECKING:
    from agent.aws.clients import AwsClients

# Tokens live 15 minutes; regenerating at 10 leaves a margin for clock skew and a slow login.
TOKEN_REGENERATE_SECONDS = 600.0
SHARED_TARGET = "aws"  # the target name of probes shared by every database (the task's credentials)


class Mode(Enum):
    """One-shot (`check`: every call made fresh) or continuous (`serve`: cached, kept connection)."""

    CHECK = "check"
    SERVE = "serve"


@dataclass(frozen=True, slots=True)
class PlannedProbe:
    """A probe, the probes it depends on, and how to tell whether it can run without them."""

    probe: Probe
    needs: tuple[str, ...] = ()
    has_material: Callable[[], bool] = field(default=lambda: False)
    wake: asyncio.Event | None = None  # set by the probe to be run at once (serve: a kept connection closed)

    @property
    def key(self) -> str:
        """The probe's identity: `name:target`."""
        return probe_key(self.probe.name, self.probe.target)


@dataclass(frozen=True, slots=True)
class Plan:
    """The probes of one configuration, in dependency order (credentials, then per target)."""

    probes: tuple[PlannedProbe, ...]
    states: Mapping[str, TargetState]


def probe_key(probe: str, target: str) -> str:
    """The identity of a probe instance."""
    return f"{probe}:{target}"


def build_plan(config: AgentConfig, aws: AwsClients | None, mode: Mode) -> Plan:
    """Construct every probe the configuration calls for."""
    planned: list[PlannedProbe] = []
    if config.uses_aws:
        if aws is None:
            raise ValueError("AWS features are configured but no AWS clients were given")
        planned.append(PlannedProbe(_credentials_probe(config, aws, mode)))
    states = {t.name: TargetState() for t in config.targets}
    for target in config.targets:
        planned.extend(_target_probes(config, target, states[target.name], aws, mode))
    if config.app is not None:
        from agent.probes.app import AppProbe

        # Needs nothing: the backend answers or not whatever the database and AWS do.
        planned.append(PlannedProbe(AppProbe(config.app, timeout=config.timeout_seconds)))
    return Plan(tuple(planned), states)


def blocker(planned: PlannedProbe, latest: Mapping[str, ProbeResult], mode: Mode) -> ProbeResult | None:
    """The failed probe this one depends on, if that keeps it from running now."""
    if mode is Mode.SERVE and planned.has_material():
        return None  # cached secret or token: keep checking the database through an AWS blip
    for key in planned.needs:
        result = latest.get(key)
        if result is not None and not result.ok:
            return result
    return None


def _credentials_probe(config: AgentConfig, aws: AwsClients, mode: Mode) -> Probe:
    from agent.probes.credentials import CredentialsProbe

    verify_every = config.db_reauth_seconds if mode is Mode.SERVE else None
    return CredentialsProbe(aws, region=config.aws_region, verify_every_seconds=verify_every)


def _target_probes(
    config: AgentConfig, target: TargetConfig, state: TargetState, aws: AwsClients | None, mode: Mode
) -> list[PlannedProbe]:
    serve = mode is Mode.SERVE
    credentials = (probe_key("credentials", SHARED_TARGET),)
    planned: list[PlannedProbe] = []
    db_needs: tuple[str, ...] = ()
    refresh_secret: Callable[[], Awaitable[None]] | None = None
    rotation: RotationWatch | None = None
    if target.secret_id and aws is not None:
        from agent.probes.secret import SecretProbe

        secret = SecretProbe(target, state, aws, refresh_seconds=config.secret_refresh_seconds if serve else None)
        planned.append(PlannedProbe(secret, credentials))
        refresh_secret = _refresher(secret, state, config.timeout_seconds)
        rotation = RotationWatch(target.secret_id, secret.fetch_pending, config.rotation_stuck_seconds)
        if target.password is None:  # the secret is the only password: the login needs it
            db_needs = (probe_key("secret", target.name),)
    if target.password_parameter and aws is not None:
        from agent.probes.parameter import ParameterProbe

        # The secret's cadence and re-read rules; no rotation stages in Parameter Store, so no RotationWatch.
        parameter = ParameterProbe(target, state, aws, refresh_seconds=config.secret_refresh_seconds if serve else None)
        planned.append(PlannedProbe(parameter, credentials))
        refresh_secret = _refresher(parameter, state, config.timeout_seconds)
        if target.password is None:  # the parameter is the only password: the login needs it
            db_needs = (probe_key("parameter", target.name),)
    if target.iam_auth and aws is not None:
        from agent.probes.token import TokenProbe

        regenerate = TOKEN_REGENERATE_SECONDS if serve else None
        planned.append(PlannedProbe(TokenProbe(target, state, aws, regenerate_after_seconds=regenerate), credentials))
        db_needs = (probe_key("token", target.name),)
    wake = asyncio.Event() if serve else None
    db = _db_probe(config, target, state, refresh_secret, rotation, wake)
    planned.append(PlannedProbe(db, db_needs, _material(target, state), wake))
    return planned


def _db_probe(
    config: AgentConfig,
    target: TargetConfig,
    state: TargetState,
    refresh_secret: Callable[[], Awaitable[None]] | None,
    rotation: RotationWatch | None,
    wake: asyncio.Event | None,
) -> Probe:
    """`wake` is given in serve mode only: a kept connection, paced logins, and the close event wakes the loop."""
    from agent.probes.db import DatabaseProbe
    from agent.probes.pacing import LoginPacing

    serve = wake is not None
    pacing = LoginPacing(
        interval_seconds=config.interval_seconds,
        failure_threshold=config.failure_threshold,
        cap_seconds=config.db_reauth_seconds,
        relogin_spread_seconds=config.db_relogin_spread_seconds,
    )
    return DatabaseProbe(
        target,
        state,
        timeout=config.timeout_seconds,
        keep_connection=serve,
        reauth_seconds=config.db_reauth_seconds if serve else None,
        refresh_secret=refresh_secret,
        pacing=pacing if serve else None,
        on_lost=wake.set if wake is not None else None,
        rotation=rotation,
    )


def _refresher(secret: Probe, state: TargetState, timeout: float) -> Callable[[], Awaitable[None]]:
    from agent.probes.runner import run_probe

    async def refresh() -> None:
        state.clear_secret()
        # Through the edge, so a failed fetch never escapes into the database probe; the secret probe's
        # own next run reports it.
        await run_probe(secret, timeout)

    return refresh


def _material(target: TargetConfig, state: TargetState) -> Callable[[], bool]:
    def has_material() -> bool:
        if target.iam_auth:
            return state.token is not None
        return target.password is not None or state.secret_password is not None

    return has_material
