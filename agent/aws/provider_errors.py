"""Failures of botocore's credential providers: the container endpoint, EKS web identity (IRSA), IMDS, profiles.

These are not API answers but what the providers raise around them: CredentialRetrievalError over the container
endpoint's answer, a token file that is not there, a web identity without a role, an IMDS that gives no token.
Hand-written parts of agent.aws.errors (which owns the code table); botocore is imported inside the functions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from agent.aws.container import EndpointAnswer
from agent.config.aws_env import WEB_IDENTITY_TOKEN_FILE
from agent.shared.reasons import Failure, Reason, chain, describe

Classify = Callable[[BaseException, str], "Failure | None"]

_HTTP_STATUS = re.compile(r"non 200 response (\d{3})")
_BODY = re.compile(r"from container metadata: (.*)$", re.DOTALL)
_CONTAINER_RESPONSE_KEYS = frozenset({"AccessKeyId", "SecretAccessKey", "Token", "Expiration"})
# The ECS agent's codes for a credentials ID it does not know (amazon-ecs-agent handlers/v1/credentials_handler.go):
# it has no credentials for this task, e.g. after it lost its state. Its 503 CredentialsUninitialized is a 5xx.
_NOT_FOUND_CODES = frozenset({"InvalidIdInRequest", "NoCredentialsAssociated", "NoIdInRequest"})
# Server headers of common forward and mesh proxies; a proxy that says nothing else usually says this.
_PROXY_SERVERS = ("squid", "envoy", "tinyproxy", "privoxy", "zscaler", "mitmproxy", "ziproxy", "bluecoat")


def retrieval_failure(exc: Any, classify: Classify) -> Failure:
    """CredentialRetrievalError says only "failed": the real cause is further down the exception chain."""
    from botocore.exceptions import MetadataRetrievalError

    provider = str(exc.kwargs.get("provider", "credentials provider"))
    where = f"could not fetch credentials from {provider}"
    causes = list(chain(exc))[1:]
    for cause in causes:  # a transport error anywhere below says what really happened
        if isinstance(cause, MetadataRetrievalError):
            continue
        found = classify(cause, "credentials")
        if found is not None:
            return Failure(found.reason, found.code, f"{where}: {found.message}", details=found.details)
    for cause in causes:
        if isinstance(cause, MetadataRetrievalError):
            return _metadata_failure(cause, where)
    return Failure(Reason.UNKNOWN, "credentials:retrieval_failed", f"{where}: {describe(exc)}")


def _metadata_failure(exc: BaseException, where: str) -> Failure:
    text = describe(exc)
    status = _HTTP_STATUS.search(text)
    if status is None:  # "Unable to parse JSON returned from container metadata services"
        return Failure(Reason.SERVER, "credentials:bad_response", f"{where}: {text}")
    code = int(status.group(1))
    if 300 <= code < 400:  # never followed (agent/aws/container.py: refuse_redirects)
        message = f"{where}: HTTP {code}, a redirect; a credentials source must answer itself, so it is not followed"
        return Failure(Reason.CONFIG, "credentials:redirect", message)
    found = _BODY.search(text)
    body = found.group(1).strip() if found else ""
    answer = next((c for c in chain(exc) if isinstance(c, EndpointAnswer)), None)
    proxy = proxy_evidence(answer.headers if answer else {}, body)
    if proxy:  # the endpoint never saw the request: the path to it is the problem (shared by the task's network)
        message = f"{where}: HTTP {code} came from a proxy ({proxy}), not from the credentials endpoint"
        return Failure(Reason.NETWORK, f"credentials:proxy_http_{code}", message)
    if code == 400 and _no_credentials_for_task(body):
        message = f"{where}: the endpoint has no credentials for this task (HTTP 400: {body})"
        return Failure(Reason.AUTH, "credentials:not_found", message)
    # 429: the endpoint's rate limit, which every task on the host shares (throttled, so scope shared); 5xx: the
    # endpoint is broken; any other 4xx: it refuses this task (its token).
    reason = Reason.THROTTLED if code == 429 else Reason.SERVER if code >= 500 else Reason.AUTH
    return Failure(reason, f"credentials:http_{code}", f"{where}: HTTP {code} ({text})")


def proxy_evidence(headers: Mapping[str, str], body: str) -> str:
    """What shows that a proxy, not the credentials endpoint, answered ('' if nothing does).

    A proxy adds `Via` (RFC 9110 7.6.3); squid adds X-Squid-Error; the endpoints (the ECS agent, EKS Pod Identity)
    answer JSON, never an HTML page.
    """
    if headers.get("via"):
        return f"Via: {headers['via'][:80]}"
    if headers.get("x-squid-error"):
        return f"X-Squid-Error: {headers['x-squid-error'][:80]}"
    server = headers.get("server", "")
    if any(name in server.lower() for name in _PROXY_SERVERS):
        return f"Server: {server[:80]}"
    if body.lstrip()[:15].lower().startswith(("<!doctype html", "<html")):
        return "an HTML page where the endpoint answers JSON"
    return ""


def _no_credentials_for_task(body: str) -> bool:
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if isinstance(document, dict) and str(document.get("code", "")) in _NOT_FOUND_CODES:
        return True
    return "not found" in body.lower()


def setup_failure(exc: BaseException, files: Mapping[str, str]) -> Failure | None:
    """The providers' own errors: a token file, a FULL_URI botocore refuses, IRSA without a role, IMDS, profiles.

    `files` maps a path to the variable that named it (AWS_WEB_IDENTITY_TOKEN_FILE, the container token file).
    """
    text = str(exc)
    if isinstance(exc, FileNotFoundError | PermissionError) and exc.filename:
        return _token_file_failure(exc, files.get(str(exc.filename)))
    if isinstance(exc, ValueError) and text.startswith("Unsupported host"):
        return Failure(Reason.CONFIG, "credentials:bad_full_uri", f"AWS_CONTAINER_CREDENTIALS_FULL_URI: {text}")
    if isinstance(exc, ValueError) and "not a legal header value" in text:
        message = "the container authorization token contains a line break"
        return Failure(Reason.CONFIG, "credentials:bad_auth_token", message)
    if isinstance(exc, ValueError) and type(exc).__module__.startswith("dateutil"):
        message = "the credentials endpoint answered an Expiration that is not a date"
        return Failure(Reason.SERVER, "credentials:bad_response", message)
    if isinstance(exc, RuntimeError) and "still expired" in text:
        return Failure(Reason.AUTH, "credentials:expired", "the credentials provider returned expired credentials")
    if isinstance(exc, KeyError) and exc.args and exc.args[0] in _CONTAINER_RESPONSE_KEYS:
        message = f"the credentials endpoint answered without {exc.args[0]}"
        return Failure(Reason.SERVER, "credentials:bad_response", message)
    return _botocore_setup_failure(exc)


def _token_file_failure(exc: FileNotFoundError | PermissionError, variable: str | None) -> Failure:
    problem = "does not exist" if isinstance(exc, FileNotFoundError) else "is not readable"
    kind = "token_file_missing" if isinstance(exc, FileNotFoundError) else "token_file_unreadable"
    if variable == WEB_IDENTITY_TOKEN_FILE:
        message = f"{WEB_IDENTITY_TOKEN_FILE}={exc.filename} {problem}: no web identity token to exchange with STS"
        return Failure(Reason.CONFIG, f"web_identity:{kind}", message)
    named = f"{variable}={exc.filename}" if variable else f"the container authorization token file {exc.filename}"
    return Failure(Reason.CONFIG, f"credentials:{kind}", f"{named} {problem}")


def _botocore_setup_failure(exc: BaseException) -> Failure | None:
    from botocore import exceptions as bx

    text = describe(exc)
    if isinstance(exc, bx.InvalidConfigError) and "web identity" in str(exc):
        message = f"{WEB_IDENTITY_TOKEN_FILE} is set but AWS_ROLE_ARN is not: there is no role to ask STS for"
        return Failure(Reason.CONFIG, "web_identity:no_role_arn", message)
    if isinstance(exc, bx.ProfileNotFound):
        return Failure(Reason.CONFIG, "aws:profile_not_found", f"AWS_PROFILE names a missing profile: {text}")
    if isinstance(exc, bx.InvalidConfigError):
        return Failure(Reason.CONFIG, "aws:invalid_config", f"the AWS configuration cannot work: {text}")
    if isinstance(exc, bx.InvalidIMDSEndpointError | bx.InvalidIMDSEndpointModeError):
        return Failure(Reason.CONFIG, "imds:bad_endpoint", f"the instance metadata endpoint is unusable: {text}")
    if isinstance(exc, bx.MetadataRetrievalError) and "IMDSv1" in text:  # the only one the IMDS provider lets out
        message = f"the instance metadata service gave no IMDSv2 token and IMDSv1 is disabled ({text})"
        return Failure(Reason.CONFIG, "imds:no_token", message)
    return None
