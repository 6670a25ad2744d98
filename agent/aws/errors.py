"""The one table that turns botocore's exceptions into Failures with stable codes, and the hints they share.

botocore is imported inside the functions: an agent without AWS features never loads it.
"""

from __future__ import annotations

import functools
import re
import socket
from collections.abc import Iterator, Mapping
from typing import Any

from agent.shared.answers import CODE_SUFFIX, find_too_large
from agent.shared.hints import missing_fields, render
from agent.shared.reasons import Failure, Reason, describe

AUTH_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "AuthFailure",
        "RequestExpired",  # the task's clock is off by more than 5 minutes
        "AccessDenied",
        "AccessDeniedException",
        "DecryptionFailure",  # Secrets Manager could not use the KMS key on our behalf
        "KMSAccessDeniedException",
    }
)
CONFIG_CODES = frozenset(
    {
        "ResourceNotFoundException",
        "InvalidRequestException",  # Secrets Manager: e.g. the secret is scheduled for deletion
        "InvalidParameterException",
        "InvalidParameterValue",
        "ValidationError",
        "ValidationException",
        "DBInstanceNotFound",
    }
)
# botocore/retries/standard.py ThrottledRetryableChecker._THROTTLED_ERROR_CODES (private there, so copied).
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
SERVER_CODES = frozenset(
    {
        "InternalServiceError",
        "InternalFailure",
        "InternalError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)

NO_CREDENTIALS_MESSAGE = (
    "no AWS credentials: the task definition has no task role (taskRoleArn), and no other source"
    " (AWS_ACCESS_KEY_ID, AWS_PROFILE, instance role) provided any"
)
_HTTP_STATUS = re.compile(r"non 200 response (\d{3})")
_XML_CODE = re.compile(r"<Code>([^<]+)</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]*)</Message>")
_CONTAINER_RESPONSE_KEYS = frozenset({"AccessKeyId", "SecretAccessKey", "Token", "Expiration"})


def classify(exc: BaseException, service: str = "aws") -> Failure | None:
    """A Failure for a botocore/aiobotocore exception raised while talking to `service`, or None."""
    from botocore.exceptions import ClientError, CredentialRetrievalError, EndpointConnectionError
    from botocore.parsers import ResponseParserError

    if (too_large := find_too_large(exc)) is not None:  # the capped HTTP session (agent/aws/capped_http.py)
        return Failure(Reason.SERVER, f"{too_large.source or service}:{CODE_SUFFIX}", str(too_large))
    if isinstance(exc, ClientError):
        return _client_error(exc, service)
    if isinstance(exc, ResponseParserError):
        return Failure(Reason.SERVER, f"{service}:bad_response", f"the answer cannot be read: {describe(exc)}")
    if isinstance(exc, CredentialRetrievalError):
        return _retrieval_failure(exc)
    for kind, reason, suffix, what in _transport_table():
        if isinstance(exc, kind):
            if isinstance(exc, EndpointConnectionError) and _is_dns(exc):
                reason, suffix, what = Reason.DNS, "{service}:dns", "name does not resolve"
            return Failure(reason, suffix.format(service=service), f"{what}: {describe(exc)}")
    return _credential_setup_failure(exc)


@functools.cache
def _transport_table() -> tuple[tuple[type[BaseException], Reason, str, str], ...]:
    from botocore import exceptions as bx

    # Order matters: ConnectTimeoutError and SSLError are botocore ConnectionErrors too, and ReadTimeoutError
    # and ConnectionClosedError are HTTPClientErrors.
    return (
        (bx.NoCredentialsError, Reason.CONFIG, "aws:no_credentials", NO_CREDENTIALS_MESSAGE),
        (bx.PartialCredentialsError, Reason.CONFIG, "aws:partial_credentials", "incomplete AWS credentials"),
        (bx.NoRegionError, Reason.CONFIG, "{service}:no_region", "no AWS region (set AGENT_AWS_REGION)"),
        (bx.ParamValidationError, Reason.CONFIG, "{service}:invalid_parameter", "rejected before sending"),
        (bx.ConnectTimeoutError, Reason.TIMEOUT, "{service}:connect_timeout", "connect timed out"),
        (bx.ReadTimeoutError, Reason.TIMEOUT, "{service}:read_timeout", "no answer in time"),
        (bx.SSLError, Reason.TLS, "{service}:tls", "TLS handshake failed"),
        (bx.EndpointConnectionError, Reason.NETWORK, "{service}:refused", "cannot connect"),
        (bx.ConnectionClosedError, Reason.NETWORK, "{service}:connection_closed", "connection closed"),
        (bx.ConnectionError, Reason.NETWORK, "{service}:connection_failed", "cannot connect"),
        (bx.HTTPClientError, Reason.NETWORK, "{service}:http_error", "HTTP request failed"),
    )


def _client_error(exc: Any, service: str) -> Failure:
    code, message = error_code(exc.response)
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    reason = _reason_for(code, status)
    full_code = f"aws:throttled:{code}" if reason is Reason.THROTTLED else f"{service}:{code}"
    return Failure(reason, full_code, f"{exc.operation_name} failed: {code}: {message}".rstrip(": "))


def error_code(response: Mapping[str, Any]) -> tuple[str, str]:
    """The error code and message of a ClientError response.

    moto returns some errors (e.g. Secrets Manager's AccessDenied) as an XML document inside a JSON error
    whose code is just the HTTP status: the real code is read from the document.
    """
    error = response.get("Error", {})
    code, message = str(error.get("Code", "")), str(error.get("Message", ""))
    if code.isdigit():
        inner = _XML_CODE.search(message)
        if inner:
            found = _XML_MESSAGE.search(message)
            return inner.group(1), found.group(1) if found else ""
        return f"http_{code}", message
    return code or "unknown_error", message


def _reason_for(code: str, status: object) -> Reason:
    for codes, reason in (
        (AUTH_CODES, Reason.AUTH),
        (CONFIG_CODES, Reason.CONFIG),
        (THROTTLING_CODES, Reason.THROTTLED),
        (SERVER_CODES, Reason.SERVER),
    ):
        if code in codes:
            return reason
    if code.startswith("http_") and code[5:].isdigit():
        status = int(code[5:])
    if status in (401, 403):
        return Reason.AUTH
    if status == 429:
        return Reason.THROTTLED
    if isinstance(status, int) and status >= 500:
        return Reason.SERVER
    return Reason.UNKNOWN


def _retrieval_failure(exc: Any) -> Failure:
    """CredentialRetrievalError says only "failed": the real cause is further down the exception chain."""
    from botocore.exceptions import MetadataRetrievalError

    provider = str(exc.kwargs.get("provider", "credentials provider"))
    where = f"could not fetch credentials from {provider}"
    causes = list(chain(exc))[1:]
    for cause in causes:  # a transport error anywhere below says what really happened
        found = classify(cause, "credentials")
        if found is not None:
            return Failure(found.reason, found.code, f"{where}: {found.message}")
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
    if 300 <= code < 400:  # never followed (agent/aws/clients.py: refuse_redirects)
        message = f"{where}: HTTP {code}, a redirect; a credentials source must answer itself, so it is not followed"
        return Failure(Reason.CONFIG, "credentials:redirect", message)
    # 429: the endpoint's rate limit, which every task on the host shares (throttled, so scope shared); 5xx: the
    # endpoint is broken; any other 4xx: it refuses this task (its token, or no credentials for it).
    reason = Reason.THROTTLED if code == 429 else Reason.SERVER if code >= 500 else Reason.AUTH
    return Failure(reason, f"credentials:http_{code}", f"{where}: HTTP {code} ({text})")


def _credential_setup_failure(exc: BaseException) -> Failure | None:
    """The container provider's own non-botocore errors: bad FULL_URI, missing token file, expired creds."""
    text = str(exc)
    if isinstance(exc, ValueError) and text.startswith("Unsupported host"):
        return Failure(Reason.CONFIG, "credentials:bad_full_uri", f"AWS_CONTAINER_CREDENTIALS_FULL_URI: {text}")
    if isinstance(exc, ValueError) and "not a legal header value" in text:
        message = "the container authorization token contains a line break"
        return Failure(Reason.CONFIG, "credentials:bad_auth_token", message)
    if isinstance(exc, FileNotFoundError | PermissionError) and exc.filename:
        problem = "does not exist" if isinstance(exc, FileNotFoundError) else "is not readable"
        code = "token_file_missing" if isinstance(exc, FileNotFoundError) else "token_file_unreadable"
        message = f"the container authorization token file {exc.filename} {problem}"
        return Failure(Reason.CONFIG, f"credentials:{code}", message)
    if isinstance(exc, ValueError) and type(exc).__module__.startswith("dateutil"):
        message = "the credentials endpoint answered an Expiration that is not a date"
        return Failure(Reason.SERVER, "credentials:bad_response", message)
    if isinstance(exc, RuntimeError) and "still expired" in text:
        return Failure(Reason.AUTH, "credentials:expired", "the credentials provider returned expired credentials")
    if isinstance(exc, KeyError) and exc.args and exc.args[0] in _CONTAINER_RESPONSE_KEYS:
        message = f"the credentials endpoint answered without {exc.args[0]}"
        return Failure(Reason.SERVER, "credentials:bad_response", message)
    return None


def chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and its causes, outermost first (each exception once)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_dns(exc: BaseException) -> bool:
    for cause in chain(exc):
        if isinstance(cause, socket.gaierror) or type(cause).__name__ == "ClientConnectorDNSError":
            return True
    return False


# Hints for failures any AWS probe can meet (credentials, throttling). Fields: see credential_facts().
COMMON_HINTS: Mapping[str, str] = {
    "aws:no_credentials": (
        "the task has no task role: set taskRoleArn in the task definition (ECS then sets"
        " AWS_CONTAINER_CREDENTIALS_RELATIVE_URI); locally export AWS_PROFILE or AWS_ACCESS_KEY_ID and"
        " AWS_SECRET_ACCESS_KEY; `aws sts get-caller-identity` must then print the role"
    ),
    "aws:partial_credentials": (
        "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY together (plus AWS_SESSION_TOKEN for temporary"
        " keys), or unset them all so the task role is used"
    ),
    "credentials:bad_full_uri": (
        "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or http to a loopback address, localhost,"
        " 169.254.170.2, 169.254.170.23 or fd00:ec2::23"
    ),
    "credentials:bad_auth_token": "rewrite the container authorization token without a trailing newline",
    "credentials:token_file_missing": (
        "{token_variable} points at a file this container cannot see: mount it, or fix the path"
    ),
    "credentials:token_file_unreadable": "make {token_variable} readable by the agent's user",
    "credentials:expired": (
        "{endpoint} handed out credentials that had already expired: check the task's clock (NTP) and the ECS"
        " agent; a replacement task gets fresh credentials"
    ),
    "credentials:auth": (
        "{endpoint} refused the request: check {token_variable} (EKS Pod Identity / ECS Anywhere) matches"
        " what the endpoint expects; try `{curl}` from inside the task"
    ),
    "credentials:reach": (
        "the task fetches its role's credentials from {endpoint}; from inside the task run `{curl}`"
        " (it must answer JSON with AccessKeyId); on ECS this is the ECS agent: if it does not answer,"
        " replace the task or check the container instance's agent"
    ),
    # No container endpoint is configured: the failing source is another of botocore's chain.
    "credentials:provider": (
        "the {provider} credentials source failed (see the message): run `aws sts get-caller-identity` from inside"
        " the task, with the same environment, to see which source botocore tries (environment keys, web identity"
        " with AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, profiles, the container endpoint, instance metadata)"
    ),
    "credentials:redirect": (
        "{endpoint} answered with a redirect to somewhere else. The ECS agent's endpoint never redirects: point the"
        " variable at the endpoint itself, and if an HTTP proxy is set (HTTP_PROXY), add 169.254.170.2 (and"
        " 169.254.169.254) to NO_PROXY so credential requests go straight to it"
    ),
    "credentials:http_429": (
        "{endpoint} is rate-limiting credential requests (HTTP 429). Its limit is shared by every task on the host,"
        " so this is not this task's fault and a replacement would not help: it clears by itself once the host's"
        " tasks ask less often. The agent keeps checking the database with the credentials it has."
    ),
    CODE_SUFFIX: (
        "{service} answered with more than the agent's cap on one answer (1 MiB), which no real answer to these"
        " calls comes near: something else answers at that address. Check where the task's AWS traffic goes"
        " (AWS_ENDPOINT_URL*, HTTPS_PROXY, a VPC endpoint's DNS, AWS_CONTAINER_CREDENTIALS_FULL_URI)"
    ),
    "throttled": (
        "AWS is throttling {service} for this account: fewer calls fleet-wide help (the agent caches secrets"
        " for AGENT_SECRET_REFRESH_SECONDS and verifies credentials with STS only now and then); retry later"
    ),
}


def common_hint(failure: Failure, facts: Mapping[str, str]) -> str:
    """The shared hint for a credentials or throttling failure; '' means the probe's own table answers."""
    if failure.code.endswith(f":{CODE_SUFFIX}"):
        service = "the ECS credentials endpoint" if failure.code.startswith("credentials:") else facts.get("service")
        return render(COMMON_HINTS[CODE_SUFFIX], {**facts, "service": service or "AWS"})
    if failure.code in COMMON_HINTS:
        key = failure.code
    elif failure.code.startswith("credentials:"):
        key = "credentials:auth" if failure.reason is Reason.AUTH else "credentials:reach"
    elif failure.reason is Reason.THROTTLED:
        key = "throttled"
    else:
        return ""
    if key.startswith("credentials:") and missing_fields(COMMON_HINTS[key], facts):  # no container endpoint
        key = "credentials:provider"
    return render(COMMON_HINTS[key], facts)
