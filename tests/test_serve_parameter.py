"""`serve` with AGENT_DB_PASSWORD_PARAMETER: a password changed in Parameter Store and the database together is
picked up by the rejected login's re-read, and a stale parameter is re-read at the secret's doubling gaps, not at
every rejected login (agent.probes.rereads)."""

from __future__ import annotations

import asyncio

from agent.sandbox.aws import CredentialsEndpoint, moto_client
from tests.support.agent_process import ServedAgent, serving
from tests.support.aws import REGION, AwsEnv, Moto
from tests.support.databases import PgAdmin, Server, random_password
from tests.support.secrets import remember
from tests.support.serve import metrics, pg_env, wait_status

HALF = 4.0


async def _get_parameter_calls(agent: ServedAgent) -> float:
    values = await metrics(agent)
    return sum(
        value
        for (name, labels), value in values.items()
        if name == "health_agent_aws_api_calls_total" and ("operation", "GetParameter") in labels
    )


async def _put(moto: Moto, name: str, value: str) -> None:
    async with moto_client(moto.url, "ssm", moto.identities.admin, REGION) as ssm:
        await ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)


async def test_a_changed_parameter_is_picked_up_and_a_stale_one_is_reread_at_doubling_gaps(
    moto_env: AwsEnv, moto: Moto, credentials_endpoint: CredentialsEndpoint, pg_server: Server, pg_admin: PgAdmin
) -> None:
    moto_env.container(credentials_endpoint.url)
    first, second, third = (remember(random_password()) for _ in range(3))
    user = await pg_admin.role(first)
    name, _ = await moto.parameter(first)
    env = {
        **pg_env(pg_server, user, first),
        "AGENT_INTERVAL_SECONDS": "0.5",
        "AGENT_DB_PASSWORD_PARAMETER": name,
        "AWS_REGION": REGION,
        "AGENT_DB_REAUTH_SECONDS": "1",  # a fresh login every second: the change is met at once
    }
    env.pop("AGENT_DB_PASSWORD")
    async with serving(env) as agent:
        await wait_status(agent, "ready")
        read = await _get_parameter_calls(agent)
        await _put(moto, name, second)
        await pg_admin.set_password(user, second)  # a manual change of both, parameter first
        async with asyncio.timeout(10):  # the first rejected login re-reads the parameter
            while await _get_parameter_calls(agent) == read:
                await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)  # fresh logins with the re-read password
        db = await asyncio.to_thread(agent.probe, "db")
        assert (db["ok"], (await wait_status(agent, "ready"))["failing"]) == (True, [])
        await pg_admin.set_password(user, third)  # the database only: the parameter is stale now
        body = await wait_status(agent, "not_ready")
        assert body["failing"] == [{"probe": "db", "target": "default", "reason": "auth", "scope": "task"}]
        await asyncio.sleep(HALF)
        before = await _get_parameter_calls(agent)
        runs_before = (await asyncio.to_thread(agent.probe, "db"))["consecutive_failures"]
        await asyncio.sleep(HALF)
        calls = await _get_parameter_calls(agent) - before
        db = await asyncio.to_thread(agent.probe, "db")
    runs = db["consecutive_failures"] - runs_before
    assert runs >= 3, f"only {runs} rejected runs: the window did not test many rejected logins"
    assert calls <= 2, f"{calls} GetParameter calls for {runs} rejected runs"
    # A run that re-read says so ("fetched again and still holds"); one between re-reads says the streak did.
    reread = ("was read again during these rejections and held this password", "was fetched again and still holds")
    assert any(f"parameter {name} {text}" in db["message"] for text in reread), db["message"]
