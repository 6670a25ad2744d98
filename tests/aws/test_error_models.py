"""Every error code botocore's service models list for the calls the agent makes or causes, and every common error
AWS answers outside the models, comes out of a real probe with a reason (never `unknown`) and a filled-in hint.

The models are read from the installed botocore (session.get_service_model(...).operation_model(...).error_shapes),
so an upgrade that adds a code fails here until the table (agent/aws/errors.py) knows it. Each code is answered on
the wire by a loopback stub and parsed by botocore itself; the call is made the way the agent makes it: STS
GetCallerIdentity and Secrets Manager GetSecretValue by the probes, AssumeRoleWithWebIdentity (EKS IRSA) and
AssumeRole (a role profile) by botocore's credential chain while the credentials probe loads credentials.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import botocore.session
import pytest

from agent.aws.clients import AwsClients
from agent.aws.errors import AWS_CALLS, THROTTLING_CODES
from agent.probes.base import TargetState
from agent.probes.credentials import CredentialsProbe
from agent.probes.parameter import ParameterProbe
from agent.probes.runner import run_probe
from agent.probes.secret import SecretProbe
from agent.sandbox.aws import Keys
from agent.shared.reasons import Reason
from tests.support.aws import PROBE_TIMEOUT, REGION, AwsEnv, AwsErrorStub, make_target

Stub = Callable[..., Awaitable[AwsErrorStub]]
# Errors every API may answer outside its model: each API reference's "Common Errors" page, plus what botocore's
# retry handler knows (throttling), and the token errors STS and JSON services answer.
COMMON_ERROR_CODES = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "IncompleteSignature",
        "InternalFailure",
        "InvalidAction",
        "InvalidClientTokenId",
        "NotAuthorized",
        "OptInRequired",
        "RequestExpired",
        "ServiceUnavailable",
        "ThrottlingException",
        "ValidationError",
        "MissingAuthenticationToken",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "UnrecognizedClientException",
        "MissingAction",
        "MissingParameter",
        "InvalidParameterCombination",
        "InvalidParameterValue",
        "InvalidQueryParameter",
        "MalformedQueryString",
    }
    | THROTTLING_CODES
)

ROLE_ARN = "arn:aws:iam::123456789012:role/orders-app"
KEYS = Keys("AKIAMODELWALK0000000", "model-walk-secret-key-0000000000000000")
# HTTP statuses AWS documents for the common errors (each API reference's "Common Errors"); 400 for the rest.
COMMON_STATUS = {
    "AccessDenied": 403,
    "InvalidClientTokenId": 403,
    "OptInRequired": 403,
    "MissingAuthenticationToken": 403,
    "SignatureDoesNotMatch": 403,
    "InternalFailure": 500,
    "ServiceUnavailable": 503,
}
# agent.shared.hints.render leaves a field it has no value for as <field>; the account is the one value a failing
# GetSecretValue cannot know (the secret's ARN comes with its first answer).
UNFILLED = re.compile(r"<(?!account>)[a-z_]+>")


def modelled_errors(operation: str) -> Iterator[tuple[str, int]]:
    """(wire error code, HTTP status) of each error shape the installed botocore model lists for `operation`."""
    service, _ = AWS_CALLS[operation]
    model = botocore.session.get_session().get_service_model(service).operation_model(operation)
    for shape in model.error_shapes:
        error = shape.metadata.get("error", {})
        yield str(error.get("code", shape.name)), int(error.get("httpStatusCode", 400))


def cases(operation: str) -> list[tuple[str, int]]:
    """The model's codes, then the common ones."""
    found = dict(modelled_errors(operation))
    for code in sorted(COMMON_ERROR_CODES - found.keys()):
        found[code] = COMMON_STATUS.get(code, 400)
    return sorted(found.items())


def expected_code(operation: str, code: str) -> str:
    prefix = AWS_CALLS[operation][1]
    return f"aws:throttled:{code}" if code in THROTTLING_CODES else f"{prefix}:{code}"


async def walk(operation: str, stub: AwsErrorStub, run: Callable[[], Awaitable[tuple[str, str, str]]]) -> None:
    """Answer `operation` with each code in turn; every answer must have a reason, the right code and a hint."""
    problems = []
    for code, status in cases(operation):
        stub.code, stub.status, stub.message = code, status, f"stubbed {code}"
        reason, full_code, hint = await run()
        if reason == Reason.UNKNOWN or full_code != expected_code(operation, code):
            problems.append(f"{code} ({status}): {reason} {full_code}")
        elif not hint or UNFILLED.search(hint):
            problems.append(f"{code} ({status}): hint {hint!r}")
    assert not problems, "\n".join(problems)
    assert stub.requests and set(stub.requests) == {operation}


def test_the_walk_covers_every_modelled_call_and_finds_codes() -> None:
    """The table lists the calls the agent makes or causes, and the models give codes to walk."""
    walked = {"GetCallerIdentity", "AssumeRole", "AssumeRoleWithWebIdentity", "GetSecretValue", "GetParameter"}
    assert set(AWS_CALLS) == walked, "a call added to AWS_CALLS needs its walk here (a test_<operation> below)"
    assert {code for code, _ in modelled_errors("AssumeRoleWithWebIdentity")} >= {
        "IDPRejectedClaim",
        "InvalidIdentityToken",
        "ExpiredTokenException",
    }
    assert {code for code, _ in modelled_errors("GetSecretValue")} >= {"DecryptionFailure", "ResourceNotFoundException"}
    assert {code for code, _ in modelled_errors("GetParameter")} >= {"ParameterNotFound", "InvalidKeyId"}


async def credentials_run(aws: AwsClients) -> tuple[str, str, str]:
    result = await run_probe(CredentialsProbe(aws, REGION), PROBE_TIMEOUT)
    assert not result.ok
    return result.reason or "", result.code, result.hint


async def test_get_caller_identity(aws_env: AwsEnv, aws: AwsClients, aws_stub: Stub) -> None:
    stub = await aws_stub("InvalidClientTokenId")
    aws_env.endpoint(stub.url)
    aws_env.keys(KEYS)
    await walk("GetCallerIdentity", stub, lambda: credentials_run(aws))


async def test_get_secret_value(aws_env: AwsEnv, aws: AwsClients, aws_stub: Stub) -> None:
    stub = await aws_stub("ResourceNotFoundException")
    aws_env.endpoint(stub.url)
    aws_env.keys(KEYS)
    probe = SecretProbe(make_target(secret_id="prod/orders"), TargetState(), aws)

    async def run() -> tuple[str, str, str]:
        result = await run_probe(probe, PROBE_TIMEOUT)
        return result.reason or "", result.code, result.hint

    await walk("GetSecretValue", stub, run)


async def test_get_parameter(aws_env: AwsEnv, aws: AwsClients, aws_stub: Stub) -> None:
    """SSM Parameter Store, as the parameter probe calls it (JSON protocol, like Secrets Manager)."""
    stub = await aws_stub("ParameterNotFound")
    aws_env.endpoint(stub.url)
    aws_env.keys(KEYS)
    probe = ParameterProbe(make_target(password_parameter="/prod/orders/password"), TargetState(), aws)

    async def run() -> tuple[str, str, str]:
        result = await run_probe(probe, PROBE_TIMEOUT)
        return result.reason or "", result.code, result.hint

    await walk("GetParameter", stub, run)


async def web_identity(aws_env: AwsEnv, stub_url: str) -> None:
    token = aws_env.tmp_path / "token"
    await asyncio.to_thread(token.write_text, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJl")
    aws_env.endpoint(stub_url)
    aws_env.set("AWS_WEB_IDENTITY_TOKEN_FILE", str(token))
    aws_env.set("AWS_ROLE_ARN", ROLE_ARN)


async def test_assume_role_with_web_identity(aws_env: AwsEnv, aws: AwsClients, aws_stub: Stub) -> None:
    """EKS IRSA: botocore's chain calls STS with the projected token when credentials are loaded."""
    stub = await aws_stub("IDPRejectedClaim", 403)
    await web_identity(aws_env, stub.url)
    await walk("AssumeRoleWithWebIdentity", stub, lambda: credentials_run(aws))


async def test_assume_role(aws_env: AwsEnv, aws_stub: Stub) -> None:
    """A role profile (AWS_PROFILE with role_arn and source_profile): the chain calls STS AssumeRole. (The chain reads
    the profile when it is built, so the clients are made after the variables are set.)"""
    stub = await aws_stub("AccessDenied", 403)
    config = Path(aws_env.tmp_path / "aws-config")
    profile = (
        f"[profile task]\nrole_arn = {ROLE_ARN}\nsource_profile = base\nregion = {REGION}\n\n[profile base]\n"
        f"aws_access_key_id = {KEYS.access_key}\naws_secret_access_key = {KEYS.secret_key}\n"
    )
    await asyncio.to_thread(config.write_text, profile)
    aws_env.set("AWS_CONFIG_FILE", str(config))
    aws_env.set("AWS_PROFILE", "task")
    aws_env.endpoint(stub.url)
    async with AwsClients(timeout_seconds=PROBE_TIMEOUT) as aws:
        await walk("AssumeRole", stub, lambda: credentials_run(aws))


async def test_a_web_identity_refusal_met_by_the_secret_probe_is_named_as_such(
    aws_env: AwsEnv, aws: AwsClients, aws_stub: Stub
) -> None:
    """The chain's STS call fails inside GetSecretValue: the code and hint are about IRSA, not Secrets Manager."""
    stub = await aws_stub("IDPRejectedClaim", 403, "Incorrect token audience")
    await web_identity(aws_env, stub.url)
    probe = SecretProbe(make_target(secret_id="prod/orders"), TargetState(), aws)
    result = await run_probe(probe, PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.AUTH, "web_identity:IDPRejectedClaim")
    assert result.message == "AssumeRoleWithWebIdentity failed: IDPRejectedClaim: Incorrect token audience"
    assert result.hint.startswith(f"the trust policy of {ROLE_ARN} does not accept this token")
    assert result.details["aws_operation"] == "AssumeRoleWithWebIdentity"
    assert result.details["aws_endpoint"] == stub.url
    assert stub.requests == ["AssumeRoleWithWebIdentity"]


@pytest.mark.parametrize(
    ("operation", "code", "hint"),
    [
        ("AssumeRoleWithWebIdentity", "InvalidIdentityToken", "IAM OIDC identity provider of this account"),
        ("AssumeRoleWithWebIdentity", "ExpiredTokenException", "mount the projected volume rather than a copy"),
        ("AssumeRoleWithWebIdentity", "IDPCommunicationError", "usually transient"),
        ("AssumeRoleWithWebIdentity", "RegionDisabledException", "STS is not activated in the region of 127.0.0.1"),
        ("GetCallerIdentity", "RequestExpired", "clock is more than 5 minutes off"),
        ("GetCallerIdentity", "InvalidAction", "AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_STS) points at something"),
    ],
)
async def test_the_hint_says_what_the_code_means(
    aws_env: AwsEnv, aws: AwsClients, aws_stub: Stub, operation: str, code: str, hint: str
) -> None:
    stub = await aws_stub(code, 400)
    if operation == "AssumeRoleWithWebIdentity":
        await web_identity(aws_env, stub.url)
    else:
        aws_env.endpoint(stub.url)
        aws_env.keys(KEYS)
    _, full_code, text = await credentials_run(aws)
    assert full_code == expected_code(operation, code)
    assert hint in text
