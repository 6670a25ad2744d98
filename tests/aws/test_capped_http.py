"""agent/aws/capped_http.py: no HTTP body past the cap reaches botocore, from STS, Secrets Manager, the ECS
credentials endpoint or the task metadata endpoint; a Content-Length past it is refused before the body is read;
a body under it (the largest secret Secrets Manager stores) passes whole; an answer that is not HTTP is a closed
connection, blamed on the peer that sent it."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator

import pytest

from agent.aws.clients import AwsClients
from agent.aws.ecs_metadata import TaskIdentity, read_task_identity
from agent.probes.base import ProbeResult, TargetState
from agent.probes.credentials import CredentialsProbe
from agent.probes.runner import run_probe
from agent.probes.secret import SecretProbe
from agent.sandbox.aws import CredentialsEndpoint
from agent.shared.answers import MAX_ANSWER_BYTES
from agent.shared.reasons import Reason
from tests.faults.hostile.answers import BUILDERS, Peer
from tests.faults.hostile.wire import Hostility
from tests.support.aws import PROBE_TIMEOUT, REGION, AwsEnv, Moto, assert_clean, make_target
from tests.support.hostile_peer import HostilePeer

CANARY = "~CAPPEDcanary-token"
SECRETS_MANAGER_MAX = 65536  # bytes of SecretString (Secrets Manager quotas)


@pytest.fixture
def front() -> Iterator[HostilePeer]:
    peer = HostilePeer().start()
    try:
        yield peer
    finally:
        peer.close()


async def sts_through(
    front: HostilePeer, hostility: Hostility, env: AwsEnv, endpoint: CredentialsEndpoint, aws: AwsClients
) -> tuple[float, ProbeResult]:
    env.container(endpoint.url)
    env.service_endpoint("STS", f"http://127.0.0.1:{front.port}")
    front.turn(BUILDERS[Peer.STS](hostility, CANARY))
    started = time.monotonic()
    result = await run_probe(CredentialsProbe(aws, REGION), PROBE_TIMEOUT)
    return time.monotonic() - started, result


async def test_a_content_length_past_the_cap_is_refused_before_the_body(
    moto_env: AwsEnv, credentials_endpoint: CredentialsEndpoint, aws: AwsClients, front: HostilePeer
) -> None:
    took, result = await sts_through(front, Hostility.HUGE, moto_env, credentials_endpoint, aws)
    assert (result.reason, result.code) == (Reason.SERVER, "sts:answer_too_large"), result.message
    assert "claimed 1,073,741,824 bytes" in result.message
    assert "something else answers at that address" in result.hint
    assert took < PROBE_TIMEOUT / 2
    assert_clean(result, CANARY)


async def test_an_endless_body_is_cut_at_the_cap(
    moto_env: AwsEnv, credentials_endpoint: CredentialsEndpoint, aws: AwsClients, front: HostilePeer
) -> None:
    took, result = await sts_through(front, Hostility.ENDLESS, moto_env, credentials_endpoint, aws)
    assert (result.reason, result.code) == (Reason.SERVER, "sts:answer_too_large"), result.message
    assert f"sent more than {MAX_ANSWER_BYTES // 1024:,} KiB" in result.message
    assert took < PROBE_TIMEOUT / 2


async def test_an_answer_that_is_not_http_is_a_closed_connection(
    moto_env: AwsEnv, credentials_endpoint: CredentialsEndpoint, aws: AwsClients, front: HostilePeer
) -> None:
    _, result = await sts_through(front, Hostility.GARBAGE, moto_env, credentials_endpoint, aws)
    assert (result.reason, result.code) == (Reason.NETWORK, "sts:connection_closed"), result.message


@pytest.mark.parametrize(
    ("hostility", "reason", "code"),
    [
        (Hostility.HUGE, Reason.SERVER, "credentials:answer_too_large"),
        (Hostility.GARBAGE, Reason.NETWORK, "credentials:connection_closed"),
    ],
)
async def test_the_credentials_endpoint_is_blamed_for_its_own_answer(
    aws_env: AwsEnv, aws: AwsClients, front: HostilePeer, hostility: Hostility, reason: Reason, code: str
) -> None:
    """Not STS, which the same probe calls next: the credentials fetcher's session carries its own name."""
    aws_env.container(f"http://127.0.0.1:{front.port}/v2/credentials/x")
    front.turn(BUILDERS[Peer.CREDENTIALS](hostility, CANARY))
    result = await run_probe(CredentialsProbe(aws, REGION), PROBE_TIMEOUT)
    assert (result.reason, result.code) == (reason, code), result.message


async def test_the_largest_secret_secrets_manager_stores_passes_whole(
    moto_env: AwsEnv, credentials_endpoint: CredentialsEndpoint, aws: AwsClients, moto: Moto
) -> None:
    moto_env.container(credentials_endpoint.url)
    padding = "x" * (SECRETS_MANAGER_MAX - 100)
    name, _ = await moto.secret({"username": "app", "password": "not-distinctive-pw", "padding": padding})
    result = await run_probe(SecretProbe(make_target(secret_id=name), TargetState(), aws), PROBE_TIMEOUT)
    assert result.ok, result.message


async def test_a_task_metadata_answer_past_the_cap_is_unknown_and_said_once(
    front: HostilePeer, caplog: pytest.LogCaptureFixture
) -> None:
    front.turn(BUILDERS[Peer.CREDENTIALS](Hostility.ENDLESS, CANARY))
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="agent.aws.ecs_metadata"):
        identity = await read_task_identity(f"http://127.0.0.1:{front.port}/v4/x", 5.0)
    assert identity == TaskIdentity.unknown()
    assert time.monotonic() - started < 2.5
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "past the agent's cap" in warnings[0], warnings
    assert json.dumps(warnings).count(CANARY) == 0
