"""CloudWatch EMF: per-minute aggregation, the ECS task metadata, and a live agent's documents checked against
the published EMF specification (JSON schema plus the rules a schema cannot express)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from agent.aws.ecs_metadata import TaskIdentity, identity_from_task, read_task_identity
from agent.outputs.emf import MAX_VALUES, EmfAggregator, EmfPublisher, Window, render, window_documents
from agent.probes.base import ProbeResult
from agent.runtime.state import AgentState
from agent.shared.reasons import NOT_RUN_CODE, Reason
from tests.support.agent_process import ServedAgent, serving
from tests.support.databases import PgAdmin, Server, random_password
from tests.support.emf_spec import spec_problems
from tests.support.results import failed, make_config, passed
from tests.support.serve import pg_env, wait_status

CONTRACT = {  # metric -> (unit, dimension set): what the CloudFormation alarms are written against
    "ProbeSuccess": ("None", ["ClusterName", "ServiceName", "Probe", "Target"]),
    "ProbeDuration": ("Milliseconds", ["ClusterName", "ServiceName", "Probe", "Target"]),
    "ProbeFailures": ("Count", ["ClusterName", "ServiceName", "Probe", "Reason"]),
    "Ready": ("None", ["ClusterName", "ServiceName"]),
}
TASK = {
    "Cluster": "arn:aws:ecs:eu-west-1:123456789012:cluster/prod",
    "TaskARN": "arn:aws:ecs:eu-west-1:123456789012:task/prod/8f03e41243824aea923aca126495f665",
    "Family": "orders-api",
    "Revision": "42",
    "ServiceName": "orders",
}
IDENTITY = TaskIdentity("prod", "orders", "orders-api", "8f03e41243824aea923aca126495f665")
MINUTE = 1_700_000_040.0  # a whole minute (divisible by 60)


def emf_lines(agent: ServedAgent) -> list[dict[str, Any]]:
    return [line for line in agent.log_lines() if "_aws" in line]


def result(ok: bool = True, probe: str = "db", target: str = "default", **kwargs: Any) -> ProbeResult:
    base = passed(probe, target) if ok else failed(probe, target)
    return ProbeResult(**{**{f: getattr(base, f) for f in base.__dataclass_fields__}, **kwargs})


# -- aggregation (pure) --------------------------------------------------------------------------------------


def test_runs_of_one_minute_become_one_document_per_probe_with_every_value() -> None:
    """Arrays keep each run: Minimum/Average/SampleCount stay exact; Timestamp is inside the minute."""
    aggregator = EmfAggregator()
    for second, ok in [(1, True), (11, True), (21, False), (31, True)]:
        aggregator.observe(result(ok), ready=ok, now=MINUTE + second)
    assert aggregator.complete(MINUTE + 59) == []
    (window,) = aggregator.complete(MINUTE + 60.5)
    docs = {tuple(d["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]): d for d in _docs(window)}
    probe = docs[("ClusterName", "ServiceName", "Probe", "Target")]
    assert probe["ProbeSuccess"] == [1, 1, 0, 1] and probe["ProbeDuration"] == [12.0, 12.0, 30.0, 12.0]
    assert probe["_aws"]["Timestamp"] == int((MINUTE + 1) * 1000)
    assert docs[("ClusterName", "ServiceName", "Probe", "Reason")]["ProbeFailures"] == 1
    assert docs[("ClusterName", "ServiceName")]["Ready"] == [1, 1, 0, 1]


def test_a_new_minute_closes_the_window_so_values_land_in_their_own_minute() -> None:
    aggregator = EmfAggregator()
    aggregator.observe(result(), True, MINUTE + 59.9)
    aggregator.observe(result(), True, MINUTE + 60.1)
    first, second = aggregator.drain()
    assert (first.minute + 1, first.first_ms // 60_000) == (second.minute, first.minute)


def test_a_full_window_is_closed_before_any_array_passes_100_values() -> None:
    """Short intervals (0.2 s = 300 runs a minute) are split, never truncated."""
    aggregator = EmfAggregator()
    complete = [aggregator.observe(result(), True, MINUTE + i * 0.15) for i in range(250)]
    assert complete.index(True) == MAX_VALUES - 1
    windows = aggregator.drain()
    sizes = [len(s.success) for w in windows for s in w.probes.values()]
    assert sizes == [100, 100, 50] and all(len(w.ready) <= MAX_VALUES for w in windows)


def test_skipped_runs_count_as_failures_with_the_blockers_reason_but_no_duration() -> None:
    aggregator = EmfAggregator()
    skipped = result(False, code=NOT_RUN_CODE, reason=Reason.NETWORK, duration_ms=0.0)
    aggregator.observe(skipped, ready=None, now=MINUTE)  # None: draining, not sampled
    (window,) = aggregator.drain()
    (doc, failures) = _docs(window)
    assert doc["ProbeSuccess"] == [0] and "ProbeDuration" not in doc
    assert [m["Name"] for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]] == ["ProbeSuccess"]
    assert (failures["Reason"], failures["ProbeFailures"]) == ("network", 1)


def test_documents_of_a_busy_window_meet_the_specification_and_the_contract() -> None:
    aggregator = EmfAggregator()
    for i in range(30):
        for probe, target in [("credentials", "aws"), ("secret", "default"), ("db", "default"), ("db", "reader")]:
            aggregator.observe(result(i % 7 != 0, probe, target), i % 5 != 0, MINUTE + i)
    docs = [d for w in aggregator.drain() for d in _docs(w)]
    assert all(spec_problems(d, int(MINUTE * 1000)) == [] for d in docs)
    assert_contract(docs)


BREAKAGES = {
    "dimension member missing": lambda d: d.pop("Target"),
    "dimension value not a string": lambda d: d.update(Target=3),
    "metric member missing": lambda d: d.pop("ProbeSuccess"),
    "metric value a string": lambda d: d.update(ProbeSuccess="1"),
    "metric value a boolean": lambda d: d.update(ProbeSuccess=True),
    "101 values": lambda d: d.update(ProbeSuccess=[1] * 101),
    "31 dimensions": lambda d: d["_aws"]["CloudWatchMetrics"][0]["Dimensions"].append(["x"] * 31),
    "unknown unit": lambda d: d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0].update(Unit="Milliseconds/Run"),
    "timestamp in seconds": lambda d: d["_aws"].update(Timestamp=1_700_000_040),
    "timestamp not an integer": lambda d: d["_aws"].update(Timestamp=1_700_000_040_000.5),
    "no namespace": lambda d: d["_aws"]["CloudWatchMetrics"][0].pop("Namespace"),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_the_spec_checker_catches_broken_documents(breakage: str) -> None:
    """The checker is not vacuous: each way of breaking a valid document is reported."""
    aggregator = EmfAggregator()
    aggregator.observe(result(), True, MINUTE)
    doc = _docs(aggregator.drain()[0])[0]
    assert spec_problems(doc, int(MINUTE * 1000)) == []
    BREAKAGES[breakage](doc)
    assert spec_problems(doc, int(MINUTE * 1000)) != []


def _docs(window: Window) -> list[dict[str, Any]]:
    return [json.loads(line) for line in render(window_documents(window, "ECSHealthAgent", IDENTITY)).splitlines()]


def assert_contract(docs: list[dict[str, Any]], namespace: str = "ECSHealthAgent") -> None:
    """Only the contract's metrics, units and dimension sets; at most 3 distinct sets."""
    sets = set()
    for doc in docs:
        (directive,) = doc["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == namespace
        (dimensions,) = directive["Dimensions"]
        sets.add(tuple(dimensions))
        for metric in directive["Metrics"]:
            assert (metric["Unit"], dimensions) == CONTRACT[metric["Name"]], metric
    assert len(sets) <= 3


# -- ECS task metadata ---------------------------------------------------------------------------------------


@dataclass
class MetadataEndpoint:
    """A stand-in for the ECS task metadata endpoint v4 on loopback."""

    body: Any = field(default_factory=lambda: dict(TASK))
    hang: bool = False
    requests: int = 0
    uri: str = ""


@pytest.fixture
async def ecs_metadata() -> AsyncIterator[MetadataEndpoint]:
    endpoint = MetadataEndpoint()

    async def task(request: web.Request) -> web.StreamResponse:
        endpoint.requests += 1
        if endpoint.hang:
            await asyncio.sleep(30)
        if isinstance(endpoint.body, str):
            return web.Response(text=endpoint.body)
        return web.json_response(endpoint.body)

    app = web.Application()
    app.router.add_get("/v4/3f2c9a1b-task/task", task)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    endpoint.uri = f"http://127.0.0.1:{port}/v4/3f2c9a1b-task"
    try:
        yield endpoint
    finally:
        await runner.cleanup()


def test_identity_from_a_task_document() -> None:
    assert identity_from_task(TASK) == IDENTITY
    no_service = {**TASK, "Cluster": "default", "ServiceName": ""}
    assert identity_from_task(no_service) == TaskIdentity("default", "orders-api", "orders-api", IDENTITY.task_id)
    assert identity_from_task({}) == TaskIdentity.unknown()


async def test_identity_is_read_from_the_endpoint(ecs_metadata: MetadataEndpoint) -> None:
    assert await read_task_identity(ecs_metadata.uri, 2.0) == IDENTITY
    assert ecs_metadata.requests == 1


async def test_without_service_name_the_family_stands_in(
    ecs_metadata: MetadataEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    """Fargate and ECS agents before 1.63.1 give no ServiceName."""
    del ecs_metadata.body["ServiceName"]
    with caplog.at_level(logging.INFO, "agent.aws.ecs_metadata"):
        identity = await read_task_identity(ecs_metadata.uri + "/", 2.0)
    assert (identity.cluster, identity.service) == ("prod", "orders-api")
    assert caplog.records[-1].service_from == "Family"  # type: ignore[attr-defined]


@pytest.mark.parametrize("case", ["unset", "refused", "not json", "not an object", "hangs"])
async def test_no_usable_endpoint_means_unknown_and_one_warning(
    ecs_metadata: MetadataEndpoint, closed_port: int, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    uri = {"unset": None, "refused": f"http://127.0.0.1:{closed_port}/v4/x"}.get(case, ecs_metadata.uri)
    ecs_metadata.body = {"not json": "<html>", "not an object": "[1, 2]"}.get(case, ecs_metadata.body)
    ecs_metadata.hang = case == "hangs"
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, "agent.aws.ecs_metadata"):
        assert await read_task_identity(uri, 0.5) == TaskIdentity.unknown()
    assert time.monotonic() - started < 3.0
    (record,) = caplog.records
    assert "'unknown'" in record.getMessage() and record.levelno == logging.WARNING


# -- the writer, in process ----------------------------------------------------------------------------------


async def test_a_full_window_is_written_at_once_and_the_rest_on_stop(ecs_metadata: MetadataEndpoint) -> None:
    """100 runs need not wait for the minute; stop() writes the partial window: nothing is lost."""
    config = make_config(cloudwatch_emf=True, ecs_metadata_uri=ecs_metadata.uri, timeout_seconds=2)
    state = AgentState(config, [("db", "default")])
    stream = io.StringIO()
    publisher = EmfPublisher(state, config, stream)
    publisher.start()
    for _ in range(150):
        state.record(passed("db", "default"))
        publisher.observe(passed("db", "default"))
    for _ in range(100):
        if stream.getvalue():
            break
        await asyncio.sleep(0.02)
    assert stream.getvalue(), "a full window was not written within 2 s"
    await publisher.stop()
    docs = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert sum(len(d["ProbeSuccess"]) for d in docs if "ProbeSuccess" in d) == 150
    assert all(spec_problems(d, int(time.time() * 1000)) == [] for d in docs)
    assert {d["ServiceName"] for d in docs} == {"orders"}


# -- a live agent --------------------------------------------------------------------------------------------


async def test_live_agent_documents_meet_the_specification_through_a_password_change(
    pg_server: Server, pg_admin: PgAdmin, ecs_metadata: MetadataEndpoint
) -> None:
    """A real serve process: valid documents, the contract's metrics, the task's dimensions, the failure."""
    password = random_password()
    user = await pg_admin.role(password)
    env = {
        **pg_env(pg_server, user, password),
        "AGENT_DB_REAUTH_SECONDS": "1",
        "AGENT_CLOUDWATCH_EMF": "true",
        "AGENT_CLOUDWATCH_NAMESPACE": "Test/EHA",
        "ECS_CONTAINER_METADATA_URI_V4": ecs_metadata.uri,
    }
    started_ms = int(time.time() * 1000)
    async with serving(env) as agent:  # waits on this loop: the metadata stand-in answers while the agent starts
        await wait_status(agent, "ready")
        await asyncio.sleep(1.0)
        await pg_admin.set_password(user, random_password())
        await wait_status(agent, "not_ready")
        await asyncio.sleep(0.5)
    docs = emf_lines(agent)
    assert docs, "no EMF line on stdout"
    problems = [p for doc in docs for p in spec_problems(doc, started_ms)]
    assert problems == []
    assert_contract(docs, "Test/EHA")
    assert {(d["ClusterName"], d["ServiceName"], d["TaskFamily"]) for d in docs} == {("prod", "orders", "orders-api")}
    assert ecs_metadata.requests == 1
    success = [v for d in docs if d.get("Probe") == "db" and "ProbeSuccess" in d for v in d["ProbeSuccess"]]
    assert 1 in success and 0 in success and success[0] == 1
    auth = sum(d["ProbeFailures"] for d in docs if d.get("Reason") == "auth")
    assert auth >= 2 and auth == success.count(0)
    ready = [v for d in docs if "Ready" in d for v in d["Ready"]]
    assert 1 in ready and ready[-1] == 0, "not ready at the end; draining is not sampled"
