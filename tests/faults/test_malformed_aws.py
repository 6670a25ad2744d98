"""Malformed answers from the ECS credentials endpoint, STS and Secrets Manager (not JSON, fields missing, cut
short, the wrong content type, a load balancer's HTML page) are classified with a stable code, never crash a
probe, and never echo the secret material they carry.

In-process, through the probe edge (run_probe) with the agent's own AwsClients, against small aiohttp stubs
on loopback; the front forwards well-formed requests to moto, so only the answer is broken.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from agent.aws.clients import AwsClients
from agent.probes.base import ProbeResult, TargetState
from agent.probes.credentials import CredentialsProbe
from agent.probes.runner import run_probe
from agent.probes.secret import SecretProbe
from agent.shared.reasons import Reason
from tests.faults.stubs import Answer, AwsFront, CredentialsStub, distinctive_task_role
from tests.support.aws import PROBE_TIMEOUT, REGION, AwsEnv, Moto, make_target
from tests.support.secrets import leaks

FRONT_KINDS = ("not_json", "empty", "truncated", "wrong_content_type", "html_error")


@pytest.fixture
async def front(moto: Moto) -> AsyncIterator[AwsFront]:
    front = AwsFront(moto.url)
    await front.start()
    try:
        yield front
    finally:
        await front.stop()


@pytest.fixture
async def credentials_stub(moto: Moto) -> AsyncIterator[CredentialsStub]:
    stub = CredentialsStub(await distinctive_task_role(moto, "malformed answers"))
    await stub.start()
    try:
        yield stub
    finally:
        await stub.stop()


def shown(result: ProbeResult) -> str:
    return " ".join([repr(result), json.dumps(result.as_dict()), json.dumps(dict(result.details))])


def assert_classified(result: ProbeResult, expected: tuple[bool, Reason | None, str]) -> None:
    assert (result.ok, result.reason, result.code) == expected, json.dumps(result.as_dict())
    assert not leaks(shown(result)), f"secret material in the result: {leaks(shown(result))}"


CREDENTIALS_CASES = {
    "ok": (True, None, "ok"),
    "not_json": (False, Reason.SERVER, "credentials:bad_response"),
    "missing_keys": (False, Reason.SERVER, "credentials:bad_response"),
    "truncated": (False, Reason.NETWORK, "credentials:connection_closed"),
    "wrong_content_type": (True, None, "ok"),
    # An HTML 502 page: a gateway in between answered (the endpoints answer JSON), not the endpoint itself.
    "html_error": (False, Reason.NETWORK, "credentials:proxy_http_502"),
    "bad_expiration": (False, Reason.SERVER, "credentials:bad_response"),
}


@pytest.mark.parametrize("kind", list(CREDENTIALS_CASES))
async def test_malformed_credentials_endpoint_answer_is_classified(
    kind: str, moto_env: AwsEnv, aws: AwsClients, credentials_stub: CredentialsStub
) -> None:
    moto_env.container(credentials_stub.url)
    credentials_stub.kind = kind
    result = await run_probe(CredentialsProbe(aws, REGION), PROBE_TIMEOUT)
    assert_classified(result, CREDENTIALS_CASES[kind])


STS_CASES = {
    "not_json": (False, Reason.SERVER, "sts:bad_response"),
    "empty": (False, Reason.SERVER, "sts:bad_response"),
    "truncated": (False, Reason.NETWORK, "sts:connection_closed"),
    "wrong_content_type": (True, None, "ok"),
    "html_error": (False, Reason.SERVER, "sts:http_502"),
}


@pytest.mark.parametrize("kind", FRONT_KINDS)
async def test_malformed_sts_answer_is_classified(
    kind: str, moto_env: AwsEnv, aws: AwsClients, front: AwsFront, credentials_stub: CredentialsStub
) -> None:
    moto_env.container(credentials_stub.url)
    moto_env.endpoint(front.url)
    front.answer({"sts": Answer(kind)})
    result = await run_probe(CredentialsProbe(aws, REGION), PROBE_TIMEOUT)
    assert_classified(result, STS_CASES[kind])


SECRET_CASES = {
    "not_json": (False, Reason.SERVER, "secretsmanager:bad_response"),
    "empty": (False, Reason.SERVER, "secretsmanager:bad_response"),
    "truncated": (False, Reason.NETWORK, "secretsmanager:connection_closed"),
    "wrong_content_type": (True, None, "ok"),
    "html_error": (False, Reason.SERVER, "secretsmanager:http_502"),
}


@pytest.mark.parametrize("kind", FRONT_KINDS)
async def test_malformed_secrets_manager_answer_is_classified(
    kind: str, moto_env: AwsEnv, aws: AwsClients, front: AwsFront, credentials_stub: CredentialsStub, moto: Moto
) -> None:
    moto_env.container(credentials_stub.url)
    moto_env.endpoint(front.url)
    name, _ = await moto.secret({"username": "app", "password": "not-distinctive-pw"})
    front.answer({"secretsmanager": Answer(kind)})
    probe = SecretProbe(make_target(secret_id=name), TargetState(), aws)
    result = await run_probe(probe, PROBE_TIMEOUT)
    assert_classified(result, SECRET_CASES[kind])
