"""A Secrets Manager rotation seen by the database probe: moto's Secrets Manager (auth enforced, task-role
credentials from a credentials endpoint) and a PostgreSQL that checks passwords, wired by build_plan as `check`
wires them. The database taking the AWSPENDING password while AWSCURRENT holds the old one is a rotation in
progress (shared), later a stuck one; anything else stays an ordinary rejected login (task)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import SecretStr

from agent.aws.clients import AwsClients
from agent.config.models import AgentConfig
from agent.probes.base import ProbeResult
from agent.probes.db import DatabaseProbe
from agent.probes.rotation import PendingSecret, RotationWatch
from agent.probes.runner import run_probe
from agent.probes.secret import SecretProbe
from agent.runtime.plan import Mode, build_plan
from agent.sandbox.aws import CredentialsEndpoint, moto_client
from agent.shared.reasons import Reason, Scope
from tests.support.aws import PROBE_TIMEOUT, REGION, AwsEnv, Moto, aws_calls
from tests.support.databases import PgAdmin, assert_no_secret, random_password, target_for


@pytest.fixture
async def task_role(moto_env: AwsEnv, credentials_endpoint: CredentialsEndpoint) -> CredentialsEndpoint:
    """The task runs with the task role, which may read every secret."""
    moto_env.container(credentials_endpoint.url)
    return credentials_endpoint


@dataclass
class Rotation:
    """One secret in moto and its role in PostgreSQL, and the probes `check` would build for them."""

    moto: Moto
    admin: PgAdmin
    secret: str
    role: str
    old: str
    aws: AwsClients
    stuck_after: float = 600.0
    static: bool = False  # also AGENT_DB_PASSWORD (the old value), as a task whose password was injected
    _probes: tuple[SecretProbe, DatabaseProbe] | None = None

    def probes(self) -> tuple[SecretProbe, DatabaseProbe]:
        if self._probes is None:
            password = SecretStr(self.old) if self.static else None
            target = target_for(
                self.admin.server, None, secret_id=self.secret, region=REGION, database="postgres", password=password
            )
            config = AgentConfig(
                targets=(target,), timeout_seconds=PROBE_TIMEOUT, rotation_stuck_seconds=self.stuck_after
            )
            plan = build_plan(config, self.aws, Mode.CHECK)
            _, secret, db = (p.probe for p in plan.probes)
            assert isinstance(secret, SecretProbe) and isinstance(db, DatabaseProbe)
            self._probes = (secret, db)
        return self._probes

    async def check(self) -> ProbeResult:
        """The secret probe, then the database probe, as one `check` round runs them."""
        secret, db = self.probes()
        fetched = await run_probe(secret, PROBE_TIMEOUT)
        assert fetched.ok, fetched.message
        return await run_probe(db, PROBE_TIMEOUT)

    async def sm(self, call: Callable[[Any], Awaitable[Any]]) -> Any:
        async with moto_client(self.moto.url, "secretsmanager", self.moto.identities.admin, REGION) as client:
            return await call(client)

    def value(self, password: str, user: str | None = None) -> str:
        return json.dumps({"username": user or self.role, "password": password, "engine": "postgres"})

    async def create_pending(self, password: str, user: str | None = None) -> str:
        """createSecret: a new version labelled AWSPENDING; returns its version id."""
        token = str(uuid.uuid4())
        await self.sm(
            lambda sm: sm.put_secret_value(
                SecretId=self.secret,
                ClientRequestToken=token,
                SecretString=self.value(password, user),
                VersionStages=["AWSPENDING"],
            )
        )
        return token

    async def finish(self, pending: str) -> None:
        """finishSecret: AWSCURRENT moves to the pending version."""
        described = await self.sm(lambda sm: sm.describe_secret(SecretId=self.secret))
        current = next(v for v, stages in described["VersionIdsToStages"].items() if "AWSCURRENT" in stages)
        await self.sm(
            lambda sm: sm.update_secret_version_stage(
                SecretId=self.secret, VersionStage="AWSCURRENT", MoveToVersionId=pending, RemoveFromVersionId=current
            )
        )


@pytest.fixture
async def rotation(task_role: CredentialsEndpoint, aws: AwsClients, moto: Moto, pg_admin: PgAdmin) -> Rotation:
    old = random_password()
    role = await pg_admin.role(old)
    secret, _ = await moto.secret({"username": role, "password": old, "engine": "postgres"})
    return Rotation(moto, pg_admin, secret, role, old, aws)


def counted(watch: RotationWatch) -> list[int]:
    """Count the watch's AWSPENDING reads (one entry per read)."""
    reads: list[int] = []
    original = watch.fetch_pending

    async def fetch() -> PendingSecret | None:
        reads.append(1)
        return await original()

    watch.fetch_pending = fetch
    return reads


async def test_database_on_awspending_is_a_rotation_in_progress_with_scope_shared(rotation: Rotation) -> None:
    """setSecret done, finishSecret not yet: auth, but shared, naming the secret; the AWSPENDING login is closed."""
    new = random_password()
    pending = await rotation.create_pending(new)
    await rotation.admin.set_password(rotation.role, new)
    before = aws_calls("secretsmanager", "GetSecretValue")
    result = await rotation.check()
    assert (result.reason, result.code, result.scope) == (Reason.AUTH, "secret:rotation_in_progress", Scope.SHARED)
    assert f"AWSCURRENT password of secret {rotation.secret}" in result.message
    assert f"accepts its AWSPENDING password (version {pending}) as {rotation.role}" in result.message
    assert "rotation Lambda" in result.hint and "would not help" in result.hint
    assert f"describe-secret --secret-id {rotation.secret} --region {REGION}" in result.hint
    # the secret probe's fetch, the refetch after the rejection, and the AWSPENDING read
    assert aws_calls("secretsmanager", "GetSecretValue") == before + 3
    assert await rotation.admin.settle(rotation.role, 0) == []
    assert_no_secret(result, rotation.old, new)


async def test_a_rotation_past_the_threshold_is_stuck_with_the_commands_to_finish_or_cancel_it(
    rotation: Rotation,
) -> None:
    rotation.stuck_after = 1.0
    new = random_password()
    pending = await rotation.create_pending(new)
    await rotation.admin.set_password(rotation.role, new)
    first = await rotation.check()
    assert first.code == "secret:rotation_in_progress"
    await asyncio.sleep(1.1)
    stuck = await rotation.check()
    assert (stuck.reason, stuck.code, stuck.scope) == (Reason.AUTH, "secret:rotation_stuck", Scope.SHARED)
    assert "AGENT_ROTATION_STUCK_SECONDS (1s)" in stuck.message
    secret, _ = rotation.probes()
    assert f"--move-to-version-id {pending} --remove-from-version-id {secret.version_id}" in stuck.hint
    assert f"cancel-rotate-secret --secret-id {rotation.secret} --region {REGION}" in stuck.hint
    assert_no_secret(stuck, rotation.old, new)


async def test_finish_secret_recovers_and_restarts_the_clock(rotation: Rotation) -> None:
    """After finishSecret the new AWSCURRENT logs in; the next rotation is timed from its own first sight."""
    rotation.stuck_after = 1.0
    new = random_password()
    pending = await rotation.create_pending(new)
    await rotation.admin.set_password(rotation.role, new)
    assert (await rotation.check()).code == "secret:rotation_in_progress"
    await asyncio.sleep(1.1)
    await rotation.finish(pending)
    recovered = await rotation.check()
    assert recovered.ok, recovered.message
    newer = random_password()
    await rotation.create_pending(newer)
    await rotation.admin.set_password(rotation.role, newer)
    again = await rotation.check()
    assert again.code == "secret:rotation_in_progress" and "for 0s so far" in again.message


async def test_an_injected_password_during_a_rotation_reads_as_the_rotation(rotation: Rotation) -> None:
    """AGENT_DB_PASSWORD and AWSCURRENT both hold the old value and AWSPENDING logs in: not drift, the rotation."""
    rotation.static = True
    new = random_password()
    await rotation.create_pending(new)
    await rotation.admin.set_password(rotation.role, new)
    result = await rotation.check()
    assert (result.code, result.scope) == ("secret:rotation_in_progress", Scope.SHARED)


async def test_no_awspending_version_is_an_ordinary_rejected_login(rotation: Rotation) -> None:
    """The database password changed outside any rotation: auth, scope task, and the message says why."""
    await rotation.admin.set_password(rotation.role, random_password())
    result = await rotation.check()
    assert (result.reason, result.code, result.scope) == (Reason.AUTH, "pg:28P01", Scope.TASK)
    assert "no AWSPENDING version with another password (no rotation in progress)" in result.message


async def test_awspending_rejected_too_is_an_ordinary_rejected_login(rotation: Rotation) -> None:
    await rotation.create_pending(random_password())
    await rotation.admin.set_password(rotation.role, random_password())
    result = await rotation.check()
    assert (result.reason, result.code, result.scope) == (Reason.AUTH, "pg:28P01", Scope.TASK)
    assert f"its AWSPENDING version does not log in as {rotation.role} either (pg:28P01)" in result.message
    assert await rotation.admin.settle(rotation.role, 0) == []


async def test_alternating_users_rotation_logs_in_as_the_pending_versions_user(rotation: Rotation) -> None:
    """An alternating-users rotation names the other user in AWSPENDING: that user is the one tried."""
    clone_password = random_password()
    clone = await rotation.admin.role(clone_password)
    await rotation.create_pending(clone_password, user=clone)
    await rotation.admin.set_password(rotation.role, random_password())  # AWSCURRENT no longer logs in
    result = await rotation.check()
    assert result.code == "secret:rotation_in_progress" and f"as {clone}" in result.message
    assert await rotation.admin.settle(clone, 0) == []


async def test_awspending_is_never_read_on_the_normal_cadence(rotation: Rotation) -> None:
    """Passing logins, and a rotation in the right order (the refetch brings a working password), read no
    AWSPENDING; only a rejection that the refetch leaves unexplained does."""
    _, db = rotation.probes()
    assert db.rotation is not None
    reads = counted(db.rotation)
    assert (await rotation.check()).ok and (await rotation.check()).ok
    new = random_password()
    await rotation.sm(lambda sm: sm.put_secret_value(SecretId=rotation.secret, SecretString=rotation.value(new)))
    await rotation.admin.set_password(rotation.role, new)
    db.state.secret_password = SecretStr(rotation.old)  # the cached old value, as `serve` holds it
    refreshed = await run_probe(db, PROBE_TIMEOUT)
    assert refreshed.ok and refreshed.details["secret_refetched"] == "yes"
    assert reads == []
    await rotation.admin.set_password(rotation.role, random_password())
    assert (await rotation.check()).code == "pg:28P01"
    assert reads == [1]
