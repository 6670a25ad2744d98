"""The backend probe end to end: `serve` and `check` as real processes, a real PostgreSQL, and a backend stand-in
on a loopback port that starts late, hangs, answers 500 and recovers.

Blocking HTTP polls run in threads (asyncio.to_thread); the stand-in runs on its own thread.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.agent_process import ServedAgent, run_agent, serving
from tests.support.backend import Backend, Mode, backend
from tests.support.databases import PgAdmin, Server, random_password
from tests.support.secrets import remember
from tests.support.serve import metrics, pg_env, sample

APP_FAILING = {"probe": "app", "target": "backend", "scope": "task"}


@pytest.fixture
def stand_in() -> Iterator[Backend]:
    with backend(Mode.DOWN) as running:
        yield running


async def ready(agent: ServedAgent) -> tuple[int, dict[str, Any]]:
    response = await asyncio.to_thread(agent.get, "/ready")
    return response.status, response.json()


async def until(agent: ServedAgent, status: str, timeout: float = 15.0) -> tuple[dict[str, Any], float]:
    """Poll /ready until it reports `status`; the body and the seconds it took."""
    started = time.monotonic()
    body = await asyncio.to_thread(agent.wait_for, lambda b: b["status"] == status, "/ready", timeout)
    return body, time.monotonic() - started


async def test_ready_follows_the_backend_through_start_hang_500_and_recovery(
    pg_server: Server, pg_admin: PgAdmin, stand_in: Backend
) -> None:
    """starting until the backend first answers; ready; 503 not_ready (task scope) when it hangs or answers 500."""
    password = remember(random_password())
    key = remember(f"qk-{secrets.token_hex(8)}")  # a key in the query string: sent, never shown
    user = await pg_admin.role(password)
    env = {**pg_env(pg_server, user, password), "AGENT_APP_URL": f"http://{stand_in.address}/health?key={key}"}
    timings: dict[str, float] = {}
    async with serving(env) as agent:
        # Not listening yet: every run is refused; past the threshold it is still `starting`, never `not_ready`.
        app = await asyncio.to_thread(agent.wait_for, lambda b: _app(b)["consecutive_failures"] >= 3)
        assert (_app(app)["code"], _app(app)["scope"]) == ("app:refused", "task")
        status, body = await ready(agent)
        assert (status, body["status"]) == (503, "starting")
        assert body["failing"] == [{**APP_FAILING, "reason": "network"}]

        stand_in.set(Mode.ANSWER, 200)
        _, timings["backend starts -> ready"] = await until(agent, "ready")
        assert (await ready(agent))[0] == 200

        stand_in.set(Mode.HANG)
        body, timings["backend hangs -> not_ready"] = await until(agent, "not_ready")
        assert body["failing"] == [{**APP_FAILING, "reason": "timeout"}]
        assert (await ready(agent))[0] == 503
        values = await metrics(agent)
        timeouts = sample(values, "probe_failures_total", probe="app", target="backend", reason="timeout", scope="task")
        assert timeouts >= 2 and sample(values, "probe_success", probe="app", target="backend") == 0

        stand_in.set(Mode.ANSWER, 500)
        started = time.monotonic()
        app = await asyncio.to_thread(agent.wait_for, lambda b: _app(b)["code"] == "app:http_500")
        timings["backend answers 500 -> code app:http_500"] = time.monotonic() - started
        status, body = await ready(agent)
        assert (status, body["status"], body["failing"]) == (503, "not_ready", [{**APP_FAILING, "reason": "server"}])
        assert "shallow liveness endpoint" in _app(app)["hint"]

        stand_in.set(Mode.ANSWER, 200)
        _, timings["backend answers 200 -> ready"] = await until(agent, "ready")
        assert (await ready(agent))[0] == 200
    print("\nbackend probe transitions (interval 0.2 s, timeout 1 s, threshold 2):")
    for transition, seconds in timings.items():
        print(f"  {transition}: {seconds:.2f} s")
    assert timings["backend starts -> ready"] < 2.0  # one interval (+ jitter) and the poll
    assert timings["backend hangs -> not_ready"] < 5.0  # two 1 s timeouts, one interval, one confirm delay
    changes = [line["status"] for line in agent.log_lines() if line["logger"] == "agent.state" and "status" in line]
    assert changes == ["ready", "not_ready", "ready", "draining"]
    assert stand_in.requests[-1] == f"GET /health?key={key} HTTP/1.1"
    assert all(key not in body.decode() for body in agent.responses)
    assert key not in agent.captured.output()


def _app(status_body: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in status_body["probes"] if p["probe"] == "app")
    return found


async def test_check_with_the_backend_down_fails_naming_its_port(
    pg_server: Server, pg_admin: PgAdmin, stand_in: Backend
) -> None:
    """`check --json`: exit 1, the database passes, the backend fails `network` with a hint naming the port."""
    password = remember(random_password())
    user = await pg_admin.role(password)
    env = {**pg_env(pg_server, user, password), "AGENT_APP_URL": f"http://{stand_in.address}/health"}
    proc = await asyncio.to_thread(run_agent, "check", "--json", env=env)
    assert "Traceback" not in proc.stderr, proc.stderr
    report = json.loads(proc.stdout)
    assert (proc.returncode, report["ok"]) == (1, False)
    assert [(p["probe"], p["target"], p["ok"]) for p in report["probes"]] == [
        ("db", "default", True),
        ("app", "backend", False),
    ]
    app = report["probes"][1]
    assert (app["reason"], app["scope"], app["code"]) == ("network", "task", "app:refused")
    assert str(stand_in.port) in app["hint"] and "is the backend container up" in app["hint"]

    stand_in.set(Mode.ANSWER, 200)
    proc = await asyncio.to_thread(run_agent, "check", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS  app [backend]" in proc.stdout and f"url=http://{stand_in.address}/health" in proc.stdout
