"""The HTTP server over real loopback sockets, fed with ProbeResults the way the scheduler feeds it."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from typing import ClassVar

import aiohttp
from pydantic import SecretStr

from agent import __version__
from agent.config.models import AgentConfig, StatusDetail
from agent.outputs.server import PATHS
from agent.probes.base import Details, Probe, ProbeResult
from agent.runtime.plan import Mode, Plan, PlannedProbe, build_plan
from agent.runtime.rounds import close_probes
from agent.runtime.scheduler import Scheduler
from agent.runtime.state import AgentState
from agent.shared.reasons import Failure, Reason, Scope
from tests.support.databases import PgAdmin, Server, random_password, target_for
from tests.support.fault_proxy import Fault, fault_proxy
from tests.support.http import IDENTITY, fetch, ready_state, serve, status_and_body
from tests.support.results import PAIRS, failed, make_config, passed


async def test_health_is_alive_and_not_cached() -> None:
    """/health answers 200 alive with Cache-Control: no-store."""
    async with serve(AgentState(make_config(), PAIRS)) as base:
        status, headers, body = await fetch(f"{base}/health")
    assert (status, body) == (200, {"status": "alive"})
    assert headers["Cache-Control"] == "no-store"


async def test_health_503_when_heartbeats_stop() -> None:
    """With a tiny interval, missing heartbeats turn /health into 503 stalled; a heartbeat revives it."""
    config = make_config(interval_seconds=0.1)
    state = AgentState(config, PAIRS, stall_floor_seconds=0.05)
    async with serve(state, config) as base:
        await asyncio.sleep(0.35)
        assert await status_and_body(f"{base}/health") == (503, {"status": "stalled"})
        state.heartbeat()
        assert await status_and_body(f"{base}/health") == (200, {"status": "alive"})


async def test_ready_walks_through_the_gate() -> None:
    """/ready: 503 starting, 200 ready, 200 degraded (network), 503 not_ready (auth), 503 draining."""
    state = AgentState(make_config(failure_threshold=2), PAIRS)
    async with serve(state) as base:
        url = f"{base}/ready"
        assert await status_and_body(url) == (503, {"status": "starting", "failing": []})
        state.record(passed("credentials", "aws"))
        state.record(passed())
        assert await status_and_body(url) == (200, {"status": "ready", "failing": []})
        for _ in range(2):
            state.record(failed(reason=Reason.NETWORK))
        degraded = {
            "status": "degraded",
            "failing": [{"probe": "db", "target": "writer", "reason": "network", "scope": "shared"}],
        }
        assert await status_and_body(url) == (200, degraded)
        for _ in range(2):
            state.record(failed(reason=Reason.AUTH))
        not_ready = {
            "status": "not_ready",
            "failing": [{"probe": "db", "target": "writer", "reason": "auth", "scope": "task"}],
        }
        assert await status_and_body(url) == (503, not_ready)
        state.start_draining()
        status, body = await status_and_body(url)
    assert (status, body["status"]) == (503, "draining")


async def test_status_full_detail() -> None:
    """/status lists every probe with its last outcome, counters, times, and the AWS identity."""
    state = ready_state()
    state.record(failed())
    async with serve(state) as base:
        status, body = await status_and_body(f"{base}/status")
    assert status == 200
    assert (body["status"], body["ready"], body["version"]) == ("ready", True, __version__)
    db = body["probes"][1]
    assert {k: db[k] for k in ("probe", "target", "ok", "reason", "code", "consecutive_failures")} == {
        "probe": "db",
        "target": "writer",
        "ok": False,
        "reason": "auth",
        "code": "db:auth",
        "consecutive_failures": 1,
    }
    assert (db["message"], db["hint"], db["last_duration_ms"]) == (
        "login refused",
        "check the password",
        30.0,
    )
    assert db["last_success"].endswith("Z") and "T" in db["last_success"]
    assert body["aws"] == {
        "arn": IDENTITY["arn"],
        "account": "123456789012",
        "provider": "container-role",
        "credentials_expire_at": "2030-01-02T03:04:05Z",
    }


async def test_status_before_any_run_has_nulls() -> None:
    """A probe that has not run yet reads ok/reason/last_success null, and there is no aws section."""
    async with serve(AgentState(make_config(), PAIRS)) as base:
        _, body = await status_and_body(f"{base}/status")
    assert body["status"] == "starting" and "aws" not in body
    first = body["probes"][0]
    assert (first["ok"], first["reason"], first["last_success"], first["last_duration_ms"]) == (
        None,
        None,
        None,
        None,
    )


async def test_status_summary_hides_messages_hints_and_identity() -> None:
    """status_detail=summary drops message, hint and the aws identity; reasons and codes stay."""
    config = make_config(status_detail=StatusDetail.SUMMARY)
    state = ready_state(config)
    state.record(failed())
    async with serve(state, config) as base:
        _, body = await status_and_body(f"{base}/status")
    assert "aws" not in body
    db = body["probes"][1]
    assert "message" not in db and "hint" not in db and db["code"] == "db:auth"


async def test_head_answers_like_get_without_a_body() -> None:
    """HEAD works on every path, with GET's status and no body."""
    async with serve(AgentState(make_config(), PAIRS)) as base:
        results = {path: await fetch(f"{base}{path}", "HEAD") for path in PATHS}
    assert {p: r.status for p, r in results.items()} == {
        "/health": 200,
        "/ready": 503,
        "/status": 200,
        "/metrics": 200,
    }
    assert all(r.body == b"" for r in results.values())


async def test_unknown_path_is_json_404() -> None:
    """Anything else is a JSON 404 listing the paths that exist."""
    async with serve(AgentState(make_config(), PAIRS)) as base:
        status, headers, body = await fetch(f"{base}/nope")
    assert (status, body) == (404, {"error": "not found", "paths": list(PATHS)})
    assert headers["Cache-Control"] == "no-store"


async def test_wrong_method_is_json_405_with_allow() -> None:
    """POST on a known path is a JSON 405 with an Allow header."""
    async with serve(AgentState(make_config(), PAIRS)) as base:
        status, headers, body = await fetch(f"{base}/ready", "POST")
    assert status == 405 and body["error"] == "method not allowed"
    assert set(headers["Allow"].split(", ")) == {"GET", "HEAD"}


async def test_oversized_request_is_refused() -> None:
    """A request line far beyond the limits gets a 4xx, not a handler run."""
    async with serve(AgentState(make_config(), PAIRS)) as base:
        reply = await fetch(f"{base}/ready?{'x' * 10_000}")
    assert 400 <= reply.status < 500


async def test_ready_and_health_stay_fast_while_a_real_probe_hangs(pg_server: Server, pg_admin: PgAdmin) -> None:
    """Handlers read a snapshot: while the real database probe hangs inside the real scheduler (its kept
    connection frozen by a proxy), /ready and /health answer in milliseconds over real sockets."""
    password = random_password()
    user = await pg_admin.role(password)
    with fault_proxy(pg_server.host, pg_server.port) as proxy:
        target = target_for(replace(pg_server, port=proxy.port), user, password=SecretStr(password))
        config = AgentConfig(targets=(target,), interval_seconds=0.1, timeout_seconds=HUNG_SECONDS)
        plan = build_plan(config, None, Mode.SERVE)
        watched = Watched(plan.probes[0].probe)
        plan = replace(plan, probes=(replace(plan.probes[0], probe=watched),))
        state = AgentState(config, [(watched.name, watched.target)])
        results: list[ProbeResult] = []
        scheduler = Scheduler(plan, state, config, observers=[results.append])
        scheduler.start()
        try:
            async with serve(state, config) as base, aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
                await _until(lambda: state.snapshot().status == "ready")
                proxy.set(Fault.HANG)
                before = watched.started
                await _until(lambda: watched.started > before)  # a run that began after the freeze: it hangs
                recorded, hang_began = len(results), time.monotonic()
                timings = {path: await _timed(session, f"{base}{path}", 25) for path in ("/ready", "/health")}
                # The hang was in progress all along: the run has not returned, and no result reached the state.
                assert watched.started == watched.returned + 1 and len(results) == recorded
                assert time.monotonic() - hang_began < HUNG_SECONDS
        finally:
            proxy.set(Fault.PASS)  # so stopping closes the kept connection promptly
            await scheduler.stop()
    for path, (answers, seconds) in timings.items():
        assert answers == {(200, "ready" if path == "/ready" else "alive")}, (path, answers)
        assert statistics.median(seconds) < 0.02 and max(seconds) < 0.5, (path, seconds)


HUNG_SECONDS = 30.0  # the probe timeout: far beyond the measurement, so the hang lasts throughout
CLIENT_TIMEOUT = aiohttp.ClientTimeout(total=5)


class Watched:
    """A real probe, watched from outside: counts runs started and returned; the runner sees the probe itself."""

    name: ClassVar[str] = "db"  # the database probe's
    failure_scope: ClassVar[Scope | None] = None

    def __init__(self, probe: Probe) -> None:
        assert probe.name == self.name
        self.probe = probe
        self.target = probe.target
        self.started = 0
        self.returned = 0

    @property
    def step(self) -> str:
        return self.probe.step

    async def run(self) -> Details:
        self.started += 1
        try:
            return await self.probe.run()
        finally:
            self.returned += 1

    def classify(self, exc: BaseException) -> Failure | None:
        return self.probe.classify(exc)

    def hint(self, failure: Failure) -> str:
        return self.probe.hint(failure)

    async def close(self) -> None:
        await close_probes(Plan((PlannedProbe(self.probe),), {}))


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def _timed(session: aiohttp.ClientSession, url: str, times: int) -> tuple[set[tuple[int, str]], list[float]]:
    """(HTTP status, body status or error) of every answer, and the seconds each took."""
    answers, seconds = set(), []
    for _ in range(times):
        started = time.perf_counter()
        async with session.get(url) as response:
            body = await response.json()
        seconds.append(time.perf_counter() - started)
        answers.add((response.status, body.get("status") or body.get("error")))
    return answers, seconds
