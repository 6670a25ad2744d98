"""GetSecretValue while the database rejects the password: one re-read per rejection streak, then the secret
probe's own cadence; a rotation in progress is followed at gaps of a quarter of its age (agent.probes.rereads).

Before the fix every rejected login read the secret twice (AWSCURRENT, then AWSPENDING): 13 calls in 30 s at a
2 s interval, and a day-long rejection cost hundreds of calls per task instead of the documented 96.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from pydantic import SecretStr

from agent.probes.rereads import ROTATION_REREAD_SHARE, SecretRereads
from agent.probes.rotation import PendingSecret, RotationWatch
from agent.sandbox.aws import CredentialsEndpoint, moto_client
from tests.support.agent_process import ServedAgent, serving
from tests.support.aws import REGION, AwsEnv, Moto
from tests.support.databases import PgAdmin, Server, random_password
from tests.support.serve import metrics, pg_env, wait_status

REFRESH = 4.0  # AGENT_SECRET_REFRESH_SECONDS of the served agent
WINDOW = 6.0  # seconds of rejection counted after not_ready: at most two cadence reads fit


async def _get_secret_value_calls(agent: ServedAgent) -> float:
    """GetSecretValue calls so far, whatever their outcome (a read of a missing AWSPENDING is billed too)."""
    values = await metrics(agent)
    return sum(
        value
        for (name, labels), value in values.items()
        if name == "health_agent_aws_api_calls_total" and ("operation", "GetSecretValue") in labels
    )


async def test_a_rejected_password_reads_the_secret_once_then_on_the_refresh_cadence(
    moto_env: AwsEnv, moto: Moto, credentials_endpoint: CredentialsEndpoint, pg_server: Server, pg_admin: PgAdmin
) -> None:
    """The role's password changes under a running task (no rotation): the first rejection reads AWSCURRENT and
    AWSPENDING once; for the rest of the streak only the refresh cadence reads (at most 2 in 6 s at a 4 s
    refresh, where every rejected login used to read twice); fixing the secret is then caught by that cadence."""
    moto_env.container(credentials_endpoint.url)
    old, other = random_password(), random_password()
    user = await pg_admin.role(old)
    name, _ = await moto.secret({"username": user, "password": old})
    env = {
        **pg_env(pg_server, user, old),
        "AGENT_INTERVAL_SECONDS": "0.5",
        "AGENT_DB_SECRET_ID": name,
        "AWS_REGION": REGION,
        "AGENT_DB_REAUTH_SECONDS": "1",  # a fresh login every second, and a backoff capped at 1 s: many logins
        "AGENT_SECRET_REFRESH_SECONDS": str(REFRESH),
    }
    env.pop("AGENT_DB_PASSWORD")
    async with serving(env) as agent:
        await wait_status(agent, "ready")
        before = await _get_secret_value_calls(agent)
        await pg_admin.set_password(user, other)
        body = await wait_status(agent, "not_ready")
        assert body["failing"] == [{"probe": "db", "target": "default", "reason": "auth", "scope": "task"}]
        first = await _get_secret_value_calls(agent)
        await asyncio.sleep(WINDOW)
        streak = await _get_secret_value_calls(agent)
        db = await asyncio.to_thread(agent.probe, "db")
        logins = db["consecutive_failures"]
        async with moto_client(moto.url, "secretsmanager", moto.identities.admin, REGION) as sm:
            await sm.put_secret_value(SecretId=name, SecretString=json.dumps({"username": user, "password": other}))
        await wait_status(agent, "ready", timeout=REFRESH + 5.0)
    assert first - before <= 2 + 1, "the first rejection: AWSCURRENT and AWSPENDING, and maybe one cadence read"
    assert streak - first <= math.ceil(WINDOW / REFRESH), f"{streak - first} reads in {WINDOW:g}s of rejections"
    assert logins >= 5, f"only {logins} rejected runs: the window did not test many rejected logins"
    assert "was read again after the first rejection and held this password" in db["message"]


def _watch() -> RotationWatch:
    async def never() -> PendingSecret | None:
        raise AssertionError("not read in these tests")

    return RotationWatch("db-secret", never, stuck_after_seconds=600.0)


def _confirm(watch: RotationWatch) -> None:
    pending = PendingSecret(SecretStr("pending-value"), "app", "v2", "v1", REGION)
    watch.confirmed(pending, "app")


def test_one_reread_per_rejection_streak_without_a_rotation() -> None:
    clock = [100.0]
    rereads = SecretRereads(_watch(), clock=lambda: clock[0])
    assert rereads.allowed()
    rereads.taken()
    for _ in range(1000):  # a day of rejected logins at one every ~86 s
        clock[0] += 86.4
        assert not rereads.allowed()
    rereads.streak_ended()  # a login with the secret passed
    assert rereads.allowed()


def test_a_rotation_in_progress_is_reread_at_gaps_of_a_quarter_of_its_age(monkeypatch: Any) -> None:
    """Logins every second through a rotation stuck for a day: each gap is at least a quarter of the rotation's
    age (log-many reads: 4/3 growth), never more than a quarter plus one login late (finishSecret is seen), and
    one read is made after AGENT_ROTATION_STUCK_SECONDS before `stuck` can be said."""
    clock = [1000.0]
    monkeypatch.setattr("agent.probes.rotation.now", lambda: clock[0])
    watch = _watch()
    rereads = SecretRereads(watch, clock=lambda: clock[0])
    rereads.taken()  # the first rejection's re-read found the rotation
    _confirm(watch)
    start = clock[0]
    reads = [start]
    for _ in range(86_400):
        clock[0] += 1.0
        if rereads.allowed():
            gap, age = clock[0] - reads[-1], clock[0] - start
            assert gap >= age * ROTATION_REREAD_SHARE or reads[-1] - start <= 600.0 < age
            rereads.taken()
            reads.append(clock[0])
        assert clock[0] - reads[-1] <= (clock[0] - start) * ROTATION_REREAD_SHARE + 1.0
    assert any(600.0 < r - start <= 601.0 for r in reads), "read again once past the stuck threshold"
    assert len(reads) <= 2 + math.log(86_400) / math.log(4 / 3), f"{len(reads)} reads in a day"
    watch.clear()  # AWSCURRENT logs in again (or no AWSPENDING): back to one read per streak
    assert not rereads.allowed()
