"""A real Secrets Manager rotation against a running agent: moto's Secrets Manager and the suite's own PostgreSQL,
driven through the rotation function's four steps. createSecret (a version labelled AWSPENDING), setSecret (ALTER
ROLE ... PASSWORD on the database), testSecret (a login with the pending password), then, after a window,
finishSecret (update_secret_version_stage moves AWSCURRENT to the pending version).

While the database already takes AWSPENDING and AWSCURRENT still holds the old password, every fresh login with
the secret is rejected: the agent names the rotation (auth, scope shared, /ready 200 degraded), never goes
not_ready, and is ready again after finishSecret. A rotation that outlasts AGENT_ROTATION_STUCK_SECONDS reads as
stuck, still shared.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import asyncpg
import pytest

from agent.sandbox.aws import CredentialsEndpoint, moto_client
from agent.sandbox.postgres import PostgresSandbox
from tests.faults.cadence import FAST, REAUTH, bounds
from tests.faults.harness import LiveAgent, live_agent
from tests.faults.hygiene import distinctive
from tests.faults.scenario import Expect, Leaks, run_fault
from tests.faults.servers import PgControl, literal
from tests.faults.stubs import distinctive_task_role
from tests.support.aws import REGION, Moto

SHORT_WINDOW = 4.0  # seconds between setSecret and finishSecret in the default suite
LONG_WINDOW = 60.0  # what the issue asks for; behind --run-slow
STUCK_AFTER = 2.0  # AGENT_ROTATION_STUCK_SECONDS of the stuck-rotation agent


@dataclass
class RotationWorld:
    """An agent reading its PostgreSQL password from a secret in moto, and the rotation function's steps."""

    agent: LiveAgent
    moto: Moto
    secret: str
    role: str
    cluster: PostgresSandbox
    control: PgControl
    pending: dict[str, str] = field(default_factory=dict)  # version id -> password, for finishSecret

    async def sessions(self) -> int:
        return len(await self.control.pids(self.role))

    def leaks(self) -> Leaks:
        return Leaks(self.sessions)

    def _value(self, password: str) -> str:
        return json.dumps({"username": self.role, "password": password, "engine": "postgres"})

    async def create_secret(self, password: str) -> str:
        """createSecret: put the new password as a version labelled AWSPENDING; return its version id."""
        token = str(uuid.uuid4())
        async with moto_client(self.moto.url, "secretsmanager", self.moto.identities.admin, REGION) as sm:
            await sm.put_secret_value(
                SecretId=self.secret,
                ClientRequestToken=token,
                SecretString=self._value(password),
                VersionStages=["AWSPENDING"],
            )
        self.pending[token] = password
        return token

    async def set_secret(self, password: str) -> None:
        """setSecret: the database password becomes the pending one (single-user rotation)."""
        await self.control.execute(f"ALTER ROLE {self.role} PASSWORD {literal(password)}")

    async def test_secret(self, password: str) -> None:
        """testSecret: log in with the pending password and run a query."""
        conn = await asyncpg.connect(
            host=self.cluster.host, port=self.cluster.port, user=self.role, password=password, database="postgres"
        )
        try:
            assert await conn.fetchval("SELECT 1") == 1
        finally:
            await conn.close()

    async def finish_secret(self, version: str) -> None:
        """finishSecret: move AWSCURRENT from the current version to the pending one."""
        async with moto_client(self.moto.url, "secretsmanager", self.moto.identities.admin, REGION) as sm:
            described = await sm.describe_secret(SecretId=self.secret)
            current = next(v for v, stages in described["VersionIdsToStages"].items() if "AWSCURRENT" in stages)
            await sm.update_secret_version_stage(
                SecretId=self.secret, VersionStage="AWSCURRENT", MoveToVersionId=version, RemoveFromVersionId=current
            )


async def _world(
    moto: Moto, cluster: PostgresSandbox, control: PgControl, name: str, env: Mapping[str, str]
) -> AsyncIterator[RotationWorld]:
    keys = await distinctive_task_role(moto, f"task role, {name}")
    endpoint = CredentialsEndpoint(keys, role_arn=moto.identities.role_arn)
    await endpoint.start()
    password = distinctive(f"PostgreSQL password ({name}, AWSCURRENT before the rotation)")
    role = await control.role(password)
    secret, _ = await moto.secret({"username": role, "password": password, "engine": "postgres"})
    full_env = {
        **FAST,
        "AGENT_DB_DSN": f"postgresql://{cluster.host}:{cluster.port}/postgres?sslmode=require",
        "AGENT_DB_SECRET_ID": secret,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": moto.url,
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": endpoint.url,
        **env,
    }
    try:
        async with live_agent(name, full_env) as agent:
            yield RotationWorld(agent, moto, secret, role, cluster, control)
    finally:
        await endpoint.stop()
        await control.drop_role(role)


@pytest.fixture(scope="module")
async def rotating(moto: Moto, fault_cluster: PostgresSandbox, pg_control: PgControl) -> AsyncIterator[RotationWorld]:
    """An agent with the default AGENT_ROTATION_STUCK_SECONDS (600)."""
    async for world in _world(moto, fault_cluster, pg_control, "aws-rotation", {}):
        yield world


@pytest.fixture(scope="module")
async def stuck(moto: Moto, fault_cluster: PostgresSandbox, pg_control: PgControl) -> AsyncIterator[RotationWorld]:
    """An agent that calls a rotation stuck after STUCK_AFTER seconds."""
    env = {"AGENT_ROTATION_STUCK_SECONDS": str(STUCK_AFTER)}
    async for world in _world(moto, fault_cluster, pg_control, "aws-rotation-stuck", env):
        yield world


async def rotate(world: RotationWorld, fault: str, window: float, code: str, *, masked: float = REAUTH) -> None:
    """One rotation as one matrix row: finishSecret `window` seconds after setSecret (or once `code` showed)."""
    new = distinctive(f"PostgreSQL password ({world.agent.name}, AWSPENDING)")
    steps: dict[str, str] = {}
    set_at = 0.0

    async def inject() -> None:  # createSecret, setSecret, testSecret
        nonlocal set_at
        steps["version"] = await world.create_secret(new)
        await world.set_secret(new)
        set_at = time.monotonic()
        await world.test_secret(new)

    async def clear() -> None:  # the rest of the window, then finishSecret
        await asyncio.sleep(max(0.0, set_at + window - time.monotonic()))
        await world.finish_secret(steps["version"])

    await run_fault(
        world.agent,
        fault,
        Expect("db", "default", "auth", (code,), "degraded", scope="shared"),
        inject,
        clear,
        bounds(masked=masked, run=0.5),
        world.leaks(),
        never_503=True,
    )


async def test_rotation_window_is_named_shared_and_never_503(rotating: RotationWorld) -> None:
    """A 4 s window at a 0.2 s interval: secret:rotation_in_progress, scope shared, 200 degraded throughout,
    ready again after finishSecret."""
    started = (await rotating.agent.wait_status("ready", 20)).at
    fault = f"Secrets Manager rotation, {SHORT_WINDOW:g} s from setSecret to finishSecret"
    await rotate(rotating, fault, SHORT_WINDOW, "secret:rotation_in_progress")
    codes = {s.code("db", "default") for s in rotating.agent.samples_since(started)}
    assert codes <= {"ok", "secret:rotation_in_progress"}, codes


@pytest.mark.slow
async def test_a_60_second_rotation_window_is_named_shared_and_never_503(rotating: RotationWorld) -> None:
    """The issue's window: 60 s between setSecret and finishSecret; in progress throughout (stuck only at 600 s)."""
    started = (await rotating.agent.wait_status("ready", 20)).at
    fault = f"Secrets Manager rotation, {LONG_WINDOW:g} s from setSecret to finishSecret"
    await rotate(rotating, fault, LONG_WINDOW, "secret:rotation_in_progress")
    codes = {s.code("db", "default") for s in rotating.agent.samples_since(started)}
    assert codes <= {"ok", "secret:rotation_in_progress"}, codes


async def test_stuck_rotation_reads_as_stuck_and_stays_shared(stuck: RotationWorld) -> None:
    """Past AGENT_ROTATION_STUCK_SECONDS the code turns from secret:rotation_in_progress to
    secret:rotation_stuck, still 200 degraded, with the commands to finish or cancel it; finishing recovers."""
    started = time.monotonic()
    fault = (
        f"Secrets Manager rotation stuck after setSecret (AGENT_ROTATION_STUCK_SECONDS={STUCK_AFTER:g}), then finished"
    )
    await rotate(stuck, fault, 0.0, "secret:rotation_stuck", masked=REAUTH + STUCK_AFTER)
    samples = stuck.agent.samples_since(started)
    codes = [s.code("db", "default") for s in samples]
    assert "secret:rotation_stuck" in codes[codes.index("secret:rotation_in_progress") :]
    hint = next(
        s.probes[("db", "default")]["hint"] for s in samples if s.code("db", "default") == "secret:rotation_stuck"
    )
    assert "update-secret-version-stage" in hint and "cancel-rotate-secret" in hint
