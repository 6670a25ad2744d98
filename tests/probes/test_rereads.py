"""GetSecretValue while the database rejects the password: re-reads at doubling gaps through a rejection streak (a
number that grows with the logarithm of its length), a rotation in progress at gaps of a quarter of its age
(agent.probes.rereads).

Before the fix every rejected login read the secret twice (AWSCURRENT, then AWSPENDING): 13 calls in 30 s at a
2 s interval, and a day-long rejection cost hundreds of calls per task instead of the documented 96.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from pydantic import SecretStr

from agent.probes.rereads import ROTATION_REREAD_SHARE, STREAK_REREAD_SHARE, SecretRereads
from agent.probes.rotation import PendingSecret, RotationWatch
from agent.sandbox.aws import CredentialsEndpoint, moto_client
from tests.support.agent_process import ServedAgent, serving
from tests.support.aws import REGION, AwsEnv, Moto
from tests.support.databases import PgAdmin, Server, random_password
from tests.support.serve import metrics, pg_env, wait_status

HALF = 5.0  # the streak is counted from HALF to 2 x HALF seconds after not_ready: doubling gaps fit one re-read


async def _get_secret_value_calls(agent: ServedAgent) -> float:
    """GetSecretValue calls so far, whatever their outcome (a read of a missing AWSPENDING is billed too)."""
    values = await metrics(agent)
    return sum(
        value
        for (name, labels), value in values.items()
        if name == "health_agent_aws_api_calls_total" and ("operation", "GetSecretValue") in labels
    )


async def test_a_rejected_password_reads_the_secret_at_doubling_gaps_not_at_every_login(
    moto_env: AwsEnv, moto: Moto, credentials_endpoint: CredentialsEndpoint, pg_server: Server, pg_admin: PgAdmin
) -> None:
    """The role's password changes under a running task (no rotation) and logins are tried about twice a second:
    from 5 s to 10 s into the rejections at most two re-reads are made (4 calls with AWSPENDING; measured: 2), where
    every rejected login used to read twice (measured: 13 calls); a secret fixed afterwards is still picked up."""
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
    }
    env.pop("AGENT_DB_PASSWORD")
    async with serving(env) as agent:
        await wait_status(agent, "ready")
        await pg_admin.set_password(user, other)
        body = await wait_status(agent, "not_ready")
        assert body["failing"] == [{"probe": "db", "target": "default", "reason": "auth", "scope": "task"}]
        await asyncio.sleep(HALF)
        before = await _get_secret_value_calls(agent)
        logins_before = (await asyncio.to_thread(agent.probe, "db"))["consecutive_failures"]
        await asyncio.sleep(HALF)
        calls = await _get_secret_value_calls(agent) - before
        db = await asyncio.to_thread(agent.probe, "db")
        async with moto_client(moto.url, "secretsmanager", moto.identities.admin, REGION) as sm:
            await sm.put_secret_value(SecretId=name, SecretString=json.dumps({"username": user, "password": other}))
        await wait_status(agent, "ready", timeout=2 * HALF + 5.0)  # the next re-read: within the streak's age
    logins = db["consecutive_failures"] - logins_before
    assert logins >= 4, f"only {logins} rejected runs: the window did not test many rejected logins"
    assert calls <= 4, f"{calls} GetSecretValue calls for {logins} rejected runs"
    assert "was read again during these rejections and held this password" in db["message"]


def _watch() -> RotationWatch:
    async def never() -> PendingSecret | None:
        raise AssertionError("not read in these tests")

    return RotationWatch("db-secret", never, stuck_after_seconds=600.0)


def _confirm(watch: RotationWatch) -> None:
    pending = PendingSecret(SecretStr("pending-value"), "app", "v2", "v1", REGION)
    watch.confirmed(pending, "app")


def test_a_streak_rereads_at_doubling_gaps_and_a_passing_login_ends_it() -> None:
    """A day of rejected logins one second apart: the second re-read at the next login (a secret changed just after
    the database is seen at once), then each gap at least half the streak's age and never much more (a later fix
    is seen within the streak's age): 18 re-reads in all, where every login used to read."""
    clock = [100.0]
    rereads = SecretRereads(_watch(), clock=lambda: clock[0])
    assert rereads.allowed()
    rereads.taken()
    reads = [clock[0]]
    for _ in range(86_400):
        clock[0] += 1.0
        if rereads.allowed():
            age, gap = clock[0] - reads[0], clock[0] - reads[-1]
            assert gap >= age * STREAK_REREAD_SHARE
            rereads.taken()
            reads.append(clock[0])
        assert clock[0] - reads[-1] <= (clock[0] - reads[0]) * STREAK_REREAD_SHARE + 1.0
    assert reads[1] - reads[0] == 1.0
    assert len(reads) <= 2 + math.log2(86_400), f"{len(reads)} reads in a day"
    rereads.streak_ended()  # a login with the secret passed
    assert rereads.allowed()


def test_the_rejections_that_confirm_a_failure_each_reread() -> None:
    """The first AGENT_FAILURE_THRESHOLD rejections come at the quick cadence: each reads the secret (a secret changed
    a moment after the database is seen before the failure counts); the next one waits for the doubling gap."""
    clock = [0.0]
    rereads = SecretRereads(None, quick=3, clock=lambda: clock[0])
    for moment in (0.0, 0.1, 0.15):
        clock[0] = moment
        assert rereads.allowed()
        rereads.taken()
    clock[0] = 0.16
    assert not rereads.allowed()  # 0.01 s since the last read, the streak is 0.16 s old
    clock[0] = 0.30
    assert rereads.allowed()  # 0.15 s since the last read: half the streak's age


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
    watch.clear()  # no rotation any more (AWSPENDING rejected too): the streak's doubling gaps apply again
    assert rereads.allowed() is (clock[0] - reads[-1] >= (clock[0] - reads[0]) * STREAK_REREAD_SHARE)
