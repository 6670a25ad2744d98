"""AWS faults against a running agent that reads its PostgreSQL password from Secrets Manager with task-role
credentials: the ECS credentials endpoint failing in every way, STS rejecting the keys, throttling, the secret
rotated or deleted. Each is classified on the right probe, /ready follows the gate policy, /health stays 200,
and the database probe keeps working through AWS trouble on its cached secret.

AWS calls go to moto through a front (tests/faults/stubs.py) that can answer what moto cannot (throttling,
ExpiredToken); the credentials endpoint hands out moto credentials whose secret parts are distinctive values.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from agent.sandbox.aws import CredentialsEndpoint, EndpointMode, Keys, moto_client, schedule_secret_deletion
from agent.sandbox.postgres import PostgresSandbox
from tests.faults.cadence import FAST, INTERVAL, REAUTH, TIMEOUT, bounds
from tests.faults.harness import LiveAgent, live_agent
from tests.faults.hygiene import distinctive
from tests.faults.scenario import Action, Expect, Leaks, run_fault, run_masked
from tests.faults.servers import PgControl, literal
from tests.faults.stubs import AwsFront, distinctive_task_role, error, rejected_keys
from tests.support.aws import REGION, Moto

FAILURE_THRESHOLD = 3  # one more than the other groups: a rotation's short window must stay under it
SECRET_REFRESH = 1.0  # the minimum: a deleted secret is noticed on the next fetch


@dataclass
class AwsWorld:
    agent: LiveAgent
    endpoint: CredentialsEndpoint
    front: AwsFront
    keys: Keys
    moto: Moto
    secret: str
    role: str
    password: str
    control: PgControl

    async def sessions(self) -> int:
        return len(await self.control.pids(self.role))

    def leaks(self) -> Leaks:
        return Leaks(self.sessions)

    def mode(self, mode: EndpointMode, delay: float = 0.0) -> Action:
        return lambda: self.endpoint.set_mode(mode, delay)

    async def put_secret(self, password: str) -> None:
        async with moto_client(self.moto.url, "secretsmanager", self.moto.identities.admin, REGION) as sm:
            value = json.dumps({"username": self.role, "password": password, "engine": "postgres"})
            await sm.put_secret_value(SecretId=self.secret, SecretString=value)

    async def restore_secret(self) -> None:
        async with moto_client(self.moto.url, "secretsmanager", self.moto.identities.admin, REGION) as sm:
            await sm.restore_secret(SecretId=self.secret)

    async def set_db_password(self, password: str) -> None:
        await self.control.execute(f"ALTER ROLE {self.role} PASSWORD {literal(password)}")


@pytest.fixture(scope="module")
async def world(moto: Moto, fault_cluster: PostgresSandbox, pg_control: PgControl) -> AsyncIterator[AwsWorld]:
    keys = await distinctive_task_role(moto, "task role")
    endpoint = CredentialsEndpoint(keys, role_arn=moto.identities.role_arn)
    front = AwsFront(moto.url)
    await endpoint.start()
    await front.start()
    password = distinctive("PostgreSQL password (from Secrets Manager)")
    role = await pg_control.role(password)
    secret, _ = await moto.secret({"username": role, "password": password, "engine": "postgres"})
    env = {
        **FAST,
        "AGENT_FAILURE_THRESHOLD": str(FAILURE_THRESHOLD),
        "AGENT_DB_DSN": f"postgresql://{fault_cluster.host}:{fault_cluster.port}/postgres?sslmode=require",
        "AGENT_DB_SECRET_ID": secret,
        "AGENT_SECRET_REFRESH_SECONDS": str(SECRET_REFRESH),
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": front.url,
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": endpoint.url,
    }
    try:
        async with live_agent("aws", env) as agent:
            yield AwsWorld(agent, endpoint, front, keys, moto, secret, role, password, pg_control)
    finally:
        await front.stop()
        await endpoint.stop()
        await pg_control.drop_role(role)


def credentials(reason: str, code: str, status: str) -> Expect:
    return Expect("credentials", "aws", reason, (code,), status)


def secret(reason: str, code: str, status: str) -> Expect:
    return Expect("secret", "default", reason, (code,), status)


aws_bounds = bounds(failures=FAILURE_THRESHOLD)


# -- the ECS credentials endpoint ----------------------------------------------------------------------------


async def test_credentials_endpoint_down_is_network_degraded_and_the_database_stays_checked(world: AwsWorld) -> None:
    """The endpoint refuses connections: the credentials probe says so at once (it loads from the provider every
    run, not from the hour-long cache), while the database probe keeps logging in with the cached secret."""
    opened = await world.agent.metric("db_connections_opened_total", target="default")
    await run_fault(
        world.agent,
        "ECS credentials endpoint down (refused)",
        credentials("network", "credentials:refused", "degraded"),
        world.mode(EndpointMode.STOPPED),
        world.mode(EndpointMode.OK),
        aws_bounds,
        world.leaks(),
    )
    assert await world.agent.metric("db_connections_opened_total", target="default") > opened


async def test_credentials_endpoint_500_is_server_degraded(world: AwsWorld) -> None:
    await run_fault(
        world.agent,
        "ECS credentials endpoint answers 500",
        credentials("server", "credentials:http_500", "degraded"),
        world.mode(EndpointMode.SERVER_ERROR),
        world.mode(EndpointMode.OK),
        aws_bounds,
        world.leaks(),
    )


async def test_credentials_endpoint_429_is_throttled_shared_and_never_503(world: AwsWorld) -> None:
    """The endpoint's rate limit is shared by every task on a host: throttled, scope shared, /ready 200 throughout
    (it used to be auth and 503 within seconds); the database stays checked with the credentials in hand."""
    await run_fault(
        world.agent,
        "ECS credentials endpoint answers 429 (rate limit)",
        Expect("credentials", "aws", "throttled", ("credentials:http_429",), "degraded", scope="shared"),
        world.mode(EndpointMode.THROTTLED),
        world.mode(EndpointMode.OK),
        aws_bounds,
        world.leaks(),
        never_503=True,
    )


async def test_credentials_endpoint_slower_than_its_budget_is_timeout_degraded(world: AwsWorld) -> None:
    """The endpoint gets 30 % of the probe timeout per attempt (it answers in milliseconds or not at all)."""
    await run_fault(
        world.agent,
        f"ECS credentials endpoint answers after {TIMEOUT:g} s",
        credentials("timeout", "credentials:read_timeout", "degraded"),
        world.mode(EndpointMode.SLOW, TIMEOUT),
        world.mode(EndpointMode.OK),
        bounds(run=TIMEOUT, failures=FAILURE_THRESHOLD),
        world.leaks(),
    )


async def test_credentials_endpoint_slow_within_its_budget_stays_ready(world: AwsWorld) -> None:
    before = world.endpoint.requests

    async def proof() -> str | None:
        served = world.endpoint.requests - before
        return f"{served} slow answers served" if served >= 5 else None

    try:
        await run_masked(
            world.agent,
            "ECS credentials endpoint answers after 0.1 s",
            "slower runs, ready throughout",
            world.mode(EndpointMode.SLOW, 0.1),
            proof,
            window=5.0,
            leaks=world.leaks(),
        )
    finally:
        await world.endpoint.set_mode(EndpointMode.OK)


async def test_expired_credentials_from_the_endpoint_are_auth_not_ready(world: AwsWorld) -> None:
    """Credentials that expired an hour ago: the endpoint (ECS agent, clock) is broken for this task only."""
    await run_fault(
        world.agent,
        "ECS credentials endpoint hands out expired credentials",
        credentials("auth", "credentials:expired", "not_ready"),
        world.mode(EndpointMode.EXPIRED),
        world.mode(EndpointMode.OK),
        aws_bounds,
        world.leaks(),
    )


@pytest.mark.slow
async def test_credentials_endpoint_that_never_answers_is_timeout_degraded(world: AwsWorld) -> None:
    await run_fault(
        world.agent,
        "ECS credentials endpoint hangs",
        credentials("timeout", "credentials:read_timeout", "degraded"),
        world.mode(EndpointMode.HANG),
        world.mode(EndpointMode.OK),
        bounds(run=TIMEOUT, failures=FAILURE_THRESHOLD),
        world.leaks(),
    )


@pytest.mark.slow
async def test_credentials_endpoint_403_is_auth_not_ready(world: AwsWorld) -> None:
    await run_fault(
        world.agent,
        "ECS credentials endpoint answers 403",
        credentials("auth", "credentials:http_403", "not_ready"),
        world.mode(EndpointMode.FORBIDDEN),
        world.mode(EndpointMode.OK),
        aws_bounds,
        world.leaks(),
    )


# -- STS and Secrets Manager ---------------------------------------------------------------------------------


async def test_sts_rejecting_the_keys_is_auth_not_ready(world: AwsWorld) -> None:
    """The endpoint hands out keys AWS does not know: a changed access key is verified with STS at once."""

    async def inject() -> None:
        world.endpoint.credentials = rejected_keys("rejected by STS")

    async def clear() -> None:
        world.endpoint.credentials = world.keys

    await run_fault(
        world.agent,
        "STS rejects the task's keys (InvalidClientTokenId)",
        credentials("auth", "sts:InvalidClientTokenId", "not_ready"),
        inject,
        clear,
        aws_bounds,
        world.leaks(),
    )


async def test_expired_session_token_is_auth_not_ready(world: AwsWorld) -> None:
    """STS answers ExpiredToken (moto cannot; the front does) when the credentials are next verified."""

    async def inject() -> None:
        world.front.answer({"sts": error("ExpiredToken", 403)})

    async def clear() -> None:
        world.front.forward()

    await run_fault(
        world.agent,
        "STS answers ExpiredToken",
        credentials("auth", "sts:ExpiredToken", "not_ready"),
        inject,
        clear,
        bounds(masked=REAUTH, failures=FAILURE_THRESHOLD),
        world.leaks(),
    )


async def test_throttled_secrets_manager_is_throttled_degraded(world: AwsWorld) -> None:
    """GetSecretValue throttled: an account-wide condition, not this task's; the cached secret keeps the
    database checked."""

    async def inject() -> None:
        world.front.answer({"secretsmanager": error("ThrottlingException")})

    async def clear() -> None:
        world.front.forward()

    await run_fault(
        world.agent,
        "Secrets Manager throttles every call",
        secret("throttled", "aws:throttled:ThrottlingException", "degraded"),
        inject,
        clear,
        bounds(masked=SECRET_REFRESH, failures=FAILURE_THRESHOLD),
        world.leaks(),
    )


async def test_throttled_sts_and_secrets_manager_report_the_root_cause(world: AwsWorld) -> None:
    """Everything throttled: the credentials probe reports it; the secret probe, which needs credentials, is
    not run and carries the same reason (code not_run), so alerts see one cause."""

    async def inject() -> None:
        world.front.answer({"secretsmanager": error("ThrottlingException"), "sts": error("Throttling")})

    async def clear() -> None:
        world.front.forward()

    await run_fault(
        world.agent,
        "STS and Secrets Manager throttle every call",
        credentials("throttled", "aws:throttled:Throttling", "degraded"),
        inject,
        clear,
        bounds(masked=REAUTH, failures=FAILURE_THRESHOLD),
        world.leaks(),
    )
    sample = world.agent.timeline[-1]
    assert sample.code("secret", "default") == "ok"  # and it recovered with the credentials


@pytest.mark.slow
async def test_secrets_manager_internal_error_is_server_degraded(world: AwsWorld) -> None:
    async def inject() -> None:
        world.front.answer({"secretsmanager": error("InternalServiceError", 500)})

    async def clear() -> None:
        world.front.forward()

    await run_fault(
        world.agent,
        "Secrets Manager answers InternalServiceError (500)",
        secret("server", "secretsmanager:InternalServiceError", "degraded"),
        inject,
        clear,
        bounds(masked=SECRET_REFRESH, failures=FAILURE_THRESHOLD),
        world.leaks(),
    )


async def test_secret_deleted_is_config_not_ready(world: AwsWorld) -> None:
    """A secret scheduled for deletion cannot be read (InvalidRequestException); restoring it recovers."""
    await run_fault(
        world.agent,
        "secret deleted (scheduled for deletion), then restored",
        secret("config", "secretsmanager:InvalidRequestException", "not_ready"),
        lambda: schedule_secret_deletion(world.moto.url, world.moto.identities.admin, world.secret, REGION),
        world.restore_secret,
        bounds(masked=SECRET_REFRESH, failures=FAILURE_THRESHOLD),
        world.leaks(),
    )


# -- rotation ------------------------------------------------------------------------------------------------


async def test_rotation_secret_first_is_followed_without_any_failure(world: AwsWorld) -> None:
    """Rotation as Secrets Manager's finishSecret leaves it (new value current, then the DB changed): the next
    fresh login with the cached old password is rejected, the secret is refetched, the new one works."""
    new = distinctive("PostgreSQL password (rotated)")
    opened = await world.agent.metric("db_connections_opened_total", target="default")
    failures_before = await world.agent.metric(
        "probe_failures_total", probe="db", target="default", reason="auth", scope="task"
    )

    async def inject() -> None:
        await world.put_secret(new)
        await world.set_db_password(new)
        world.password = new

    async def proof() -> str | None:
        logins = await world.agent.metric("db_connections_opened_total", target="default") - opened
        return f"{logins:.0f} fresh logins with the rotated password" if logins >= 2 else None

    await run_masked(
        world.agent,
        "secret rotated (secret updated, then the database password)",
        "absorbed: refetch on the rejected login, no failure, ready throughout",
        inject,
        proof,
        window=REAUTH * 4 + 2,
        leaks=world.leaks(),
    )
    failures = await world.agent.metric(
        "probe_failures_total", probe="db", target="default", reason="auth", scope="task"
    )
    assert failures == failures_before, "a rotation in the right order must not cost a single failed run"


async def test_rotation_database_first_stays_under_the_failure_threshold(world: AwsWorld) -> None:
    """The other order (setSecret changed the database, finishSecret not yet run): for a moment the current
    secret is rejected. A window shorter than the failure threshold costs failed runs but never not_ready."""
    new = distinctive("PostgreSQL password (rotated, database first)")
    # Runs are >= 0.9 x INTERVAL apart: a window this long holds at most FAILURE_THRESHOLD - 1 fresh logins,
    # with room for the time moto takes to store the new value.
    window = INTERVAL * (FAILURE_THRESHOLD - 2)
    started = asyncio.get_running_loop().time()
    rejected = await world.agent.metric(
        "probe_failures_total", probe="db", target="default", reason="auth", scope="task"
    )

    async def inject() -> None:
        await world.set_db_password(new)
        await asyncio.sleep(window)
        await world.put_secret(new)
        world.password = new

    async def proof() -> str | None:
        if asyncio.get_running_loop().time() - started < REAUTH * 3:
            return None
        failed = await world.agent.metric(
            "probe_failures_total", probe="db", target="default", reason="auth", scope="task"
        )
        return f"{failed - rejected:.0f} failed runs (auth) around the rotation"

    await run_masked(
        world.agent,
        f"secret rotated, database password changed {window:.1f} s before the secret",
        f"at most {FAILURE_THRESHOLD - 1} failed runs, never not_ready",
        inject,
        proof,
        window=REAUTH * 3 + 3,
        leaks=world.leaks(),
    )
    failed = await world.agent.metric("probe_failures_total", probe="db", target="default", reason="auth", scope="task")
    assert failed - rejected <= FAILURE_THRESHOLD - 1
