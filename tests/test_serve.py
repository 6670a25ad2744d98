"""`ecs-health-agent serve` as a real process: readiness transitions, metrics, cadences, drain, healthcheck.

Blocking HTTP polls run in threads (asyncio.to_thread) so stand-ins on the test's loop keep answering.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.sandbox.aws import CredentialsEndpoint, moto_client
from tests.support.agent_process import ServedAgent, run_agent, serving
from tests.support.aws import REGION, AwsEnv, Moto
from tests.support.databases import PgAdmin, Server, random_password
from tests.support.fault_proxy import Fault, FaultProxy, fault_proxy
from tests.support.serve import FAST, metrics, pg_env, sample, wait_status


@pytest.fixture
def pg_proxy(pg_server: Server) -> Iterator[FaultProxy]:
    with fault_proxy(pg_server.host, pg_server.port) as proxy:
        yield proxy


async def test_gate_starting_ready_then_not_ready_on_password_change_then_recovers(
    pg_server: Server, pg_admin: PgAdmin
) -> None:
    """The incident, live: the password changes under a running task; /ready turns 503 with reason auth."""
    password = random_password()
    user = await pg_admin.role(password)
    env = {**pg_env(pg_server, user, password), "AGENT_DB_REAUTH_SECONDS": "1"}
    async with serving(env) as agent:
        await wait_status(agent, "ready")
        assert (await asyncio.to_thread(agent.get, "/ready")).status == 200
        await pg_admin.set_password(user, random_password())
        body = await wait_status(agent, "not_ready")
        assert body["failing"] == [{"probe": "db", "target": "default", "reason": "auth", "scope": "task"}]
        ready = await asyncio.to_thread(agent.get, "/ready")
        assert (ready.status, ready.json()["status"]) == (503, "not_ready")
        values = await metrics(agent)
        assert sample(values, "ready") == 0 and sample(values, "status", status="not_ready") == 1
        assert sample(values, "probe_failures_total", probe="db", target="default", reason="auth", scope="task") >= 2
        assert sample(values, "probe_success", probe="db", target="default") == 0
        await pg_admin.set_password(user, password)
        await wait_status(agent, "ready")
        values = await metrics(agent)
        assert sample(values, "ready") == 1 and sample(values, "probe_success", probe="db", target="default") == 1
    changes = [line for line in agent.log_lines() if line["logger"] == "agent.state"]
    assert [c.get("status") for c in changes if "status" in c] == ["ready", "not_ready", "ready", "draining"]


@pytest.mark.parametrize(("policy", "expected", "http"), [("gate", "degraded", 200), ("strict", "not_ready", 503)])
async def test_database_port_closed(
    pg_server: Server, pg_admin: PgAdmin, pg_proxy: FaultProxy, policy: str, expected: str, http: int
) -> None:
    """A shared outage keeps a gated fleet in service (degraded, 200); strict takes it out (503)."""
    password = random_password()
    user = await pg_admin.role(password)
    env = {**pg_env(pg_server, user, password, pg_proxy.port), "AGENT_READINESS_POLICY": policy}
    async with serving(env) as agent:
        await wait_status(agent, "ready")
        pg_proxy.set(Fault.REFUSE)
        body = await wait_status(agent, expected)
        assert body["failing"] == [{"probe": "db", "target": "default", "reason": "network", "scope": "shared"}]
        assert (await asyncio.to_thread(agent.get, "/ready")).status == http
        assert (await asyncio.to_thread(agent.get, "/health")).status == 200
        values = await metrics(agent)
        assert (
            sample(values, "probe_failures_total", probe="db", target="default", reason="network", scope="shared") >= 2
        )
        assert sample(values, "probe_failures_total", probe="db", target="default", reason="auth", scope="task") == 0
        pg_proxy.set(Fault.PASS)
        await wait_status(agent, "ready")


async def test_hung_database_does_not_slow_health_or_ready(
    pg_server: Server, pg_admin: PgAdmin, pg_proxy: FaultProxy
) -> None:
    """Handlers read a snapshot: a database that accepts and never answers costs them nothing."""
    password = random_password()
    user = await pg_admin.role(password)
    async with serving(pg_env(pg_server, user, password, pg_proxy.port)) as agent:
        await wait_status(agent, "ready")
        pg_proxy.set(Fault.HANG)
        await asyncio.to_thread(agent.wait_for, lambda b: b["probes"][0]["consecutive_failures"] >= 2)
        assert (await asyncio.to_thread(agent.probe, "db"))["reason"] == "timeout"
        timings = await asyncio.to_thread(_timings, agent, ["/ready", "/health"] * 50)
        assert max(timings) < 0.1, f"slowest {max(timings) * 1000:.1f} ms"
        assert sorted(timings)[len(timings) // 2] < 0.01
        assert (await asyncio.to_thread(agent.get, "/ready")).json()["status"] == "degraded"
        pg_proxy.set(Fault.PASS)


def _timings(agent: ServedAgent, paths: list[str]) -> list[float]:
    return [agent.get(path).elapsed for path in paths]


async def test_metrics_pass_promtool(pg_server: Server, pg_admin: PgAdmin) -> None:
    promtool = await asyncio.to_thread(shutil.which, "promtool")
    assert promtool, "promtool not found: install Debian's 'prometheus' package (scripts/setup.sh does)"
    password = random_password()
    user = await pg_admin.role(password)
    async with serving(pg_env(pg_server, user, "wrong-" + password)) as agent:
        await asyncio.to_thread(agent.wait_for, lambda b: b["probes"][0]["consecutive_failures"] >= 1)
        body = (await asyncio.to_thread(agent.get, "/metrics")).body
    command = [promtool, "check", "metrics"]
    proc = await asyncio.to_thread(subprocess.run, command, input=body, capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()


async def test_one_kept_connection_and_a_fresh_login_per_reauth_period(pg_server: Server, pg_admin: PgAdmin) -> None:
    """~15 probe runs ping one kept connection; a new login only every AGENT_DB_REAUTH_SECONDS."""
    password = random_password()
    user = await pg_admin.role(password)
    env = {**pg_env(pg_server, user, password), "AGENT_DB_REAUTH_SECONDS": "1"}
    async with serving(env) as agent:
        await wait_status(agent, "ready")
        started = time.monotonic()
        sessions = []
        while time.monotonic() - started < 3.0:
            sessions.append(len(await pg_admin.pids(user)))
            await asyncio.sleep(0.1)
        values = await metrics(agent)
        runs = sample(values, "probe_duration_seconds_count", probe="db", target="default")
        opened = sample(values, "db_connections_opened_total", target="default")
    assert max(sessions) <= 1, f"the agent held {max(sessions)} sessions at once"
    assert runs >= 12
    assert 3 <= opened <= 6, f"{opened} logins for {runs} runs over ~3.5 s with a 1 s reauth period"


async def test_secret_is_fetched_at_its_cadence_not_every_interval(
    moto_env: AwsEnv, moto: Moto, credentials_endpoint: CredentialsEndpoint, pg_server: Server, pg_admin: PgAdmin
) -> None:
    moto_env.container(credentials_endpoint.url)
    password = random_password()
    user = await pg_admin.role(password)
    name, _ = await moto.secret({"username": user, "password": password})
    env = {
        **pg_env(pg_server, user, password),
        "AGENT_DB_PASSWORD": "",
        "AGENT_DB_SECRET_ID": name,
        "AWS_REGION": REGION,
        "AGENT_SECRET_REFRESH_SECONDS": "2",
    }
    env.pop("AGENT_DB_PASSWORD")
    async with serving(env) as agent:
        await wait_status(agent, "ready")
        await asyncio.sleep(3.2)
        values = await metrics(agent)
    runs = sample(values, "probe_duration_seconds_count", probe="secret", target="default")
    calls = sample(
        values, "aws_api_calls_total", service="secretsmanager", operation="GetSecretValue", outcome="success"
    )
    assert runs >= 12
    assert 2 <= calls <= 3, f"{calls} GetSecretValue calls for {runs} secret probe runs with a 2 s refresh"
    started = next(line for line in agent.log_lines() if "listening on" in line["message"])
    assert started["probes"] == {"aws": ["credentials"], "default": ["secret", "db"]}


async def test_rotation_is_followed_without_a_false_alarm(
    moto_env: AwsEnv, moto: Moto, credentials_endpoint: CredentialsEndpoint, pg_server: Server, pg_admin: PgAdmin
) -> None:
    """Secret rotated and the role's password changed: the rejected cached value triggers a refetch, no auth."""
    moto_env.container(credentials_endpoint.url)
    old, new = random_password(), random_password()
    user = await pg_admin.role(old)
    name, _ = await moto.secret({"username": user, "password": old})
    env = {**pg_env(pg_server, user, old), "AGENT_DB_SECRET_ID": name, "AWS_REGION": REGION}
    env.pop("AGENT_DB_PASSWORD")
    env["AGENT_DB_REAUTH_SECONDS"] = "1"
    async with serving(env) as agent:
        await wait_status(agent, "ready")
        async with moto_client(moto.url, "secretsmanager", moto.identities.admin, REGION) as sm:
            await sm.put_secret_value(SecretId=name, SecretString=f'{{"username": "{user}", "password": "{new}"}}')
        await pg_admin.set_password(user, new)
        await asyncio.sleep(2.5)  # two reauth periods with the new password
        values = await metrics(agent)
        status = (await asyncio.to_thread(agent.get, "/status")).json()
    assert status["status"] == "ready"
    assert sample(values, "probe_failures_total", probe="db", target="default", reason="auth", scope="task") == 0
    assert (
        sample(values, "aws_api_calls_total", service="secretsmanager", operation="GetSecretValue", outcome="success")
        >= 2
    )


async def test_sigterm_drains_then_exits_zero(pg_server: Server, pg_admin: PgAdmin) -> None:
    password = random_password()
    user = await pg_admin.role(password)
    env = {**pg_env(pg_server, user, password), "AGENT_SHUTDOWN_GRACE_SECONDS": "1.5"}
    async with serving(env) as agent:
        await wait_status(agent, "ready")
        agent.process.send_signal(15)
        ready = await asyncio.to_thread(agent.wait_for, lambda b: b["status"] == "draining", "/ready", 2.0)
        assert ready == {"status": "draining", "failing": []}
        assert (await asyncio.to_thread(agent.get, "/ready")).status == 503
        assert (await asyncio.to_thread(agent.get, "/health")).status == 200
        started = time.monotonic()
        code = await asyncio.wait_for(agent.process.wait(), 10)
        assert code == 0
        assert time.monotonic() - started < 3.0
    assert await pg_admin.settle(user, 0) == [], "the kept connection must be closed on exit"


async def test_healthcheck_command_against_live_and_dead_agent(pg_server: Server, pg_admin: PgAdmin) -> None:
    password = random_password()
    user = await pg_admin.role(password)
    async with serving(pg_env(pg_server, user, password)) as agent:
        await wait_status(agent, "ready")
        port = str(agent.port)
        live = await asyncio.to_thread(run_agent, "healthcheck", "--port", port, env={})
        ready = await asyncio.to_thread(run_agent, "healthcheck", "--ready", env={"AGENT_PORT": port})
    assert (live.returncode, ready.returncode) == (0, 0)
    dead = await asyncio.to_thread(run_agent, "healthcheck", "--port", port, env={})
    assert dead.returncode == 1


async def test_ready_is_503_while_a_task_that_can_never_work_starts(pg_server: Server, pg_admin: PgAdmin) -> None:
    """A bad deployment (wrong password from the first run) never takes traffic and says why."""
    user = await pg_admin.role(random_password())
    async with serving(pg_env(pg_server, user, "stale-password-literal")) as agent:
        body = await asyncio.to_thread(agent.wait_for, lambda b: b["status"] == "not_ready", "/ready")
        assert body["failing"] == [{"probe": "db", "target": "default", "reason": "auth", "scope": "task"}]
        probe = await asyncio.to_thread(agent.probe, "db")
        assert probe["code"] == "pg:28P01" and probe["last_success"] is None and probe["hint"]


async def test_an_optional_database_that_fails_never_makes_ready_503(
    pg_server: Server, pg_admin: PgAdmin, tmp_path: Path
) -> None:
    """--config with a writer and a `critical: false` reporting replica whose password is wrong: /ready is 200
    (degraded, never starting or not_ready); /status shows the replica failing auth, marked not critical."""
    password = random_password()
    user = await pg_admin.role(password)
    base = f"postgresql://{user}:{{password}}@127.0.0.1:{pg_server.port}/{pg_server.admin_database}?sslmode=disable"
    config = tmp_path / "agent.yaml"
    text = (
        "database:\n  connections:\n"
        f"    writer:\n      dsn: {base.format(password=password)}\n"
        f"    reporting:\n      dsn: {base.format(password=random_password())}\n      critical: false\n"
    )
    await asyncio.to_thread(config.write_text, text)
    async with serving(dict(FAST), "--config", str(config)) as agent:
        body = await asyncio.to_thread(
            agent.wait_for, lambda b: any(f["target"] == "reporting" for f in b["failing"]), "/ready", 15.0
        )
        assert body == {
            "status": "degraded",
            "failing": [{"probe": "db", "target": "reporting", "reason": "auth", "scope": "task"}],
        }
        assert (await asyncio.to_thread(agent.get, "/ready")).status == 200
        reporting = await asyncio.to_thread(agent.probe, "db", "reporting")
        assert (reporting["code"], reporting["critical"]) == ("pg:28P01", False)
        statuses = [
            line["status"] for line in agent.log_lines() if line.get("logger") == "agent.state" and "status" in line
        ]
    assert "not_ready" not in statuses
