"""The one table that turns botocore's exceptions into Failures with stable codes, and the hints they share.

Codes: `{service}:{AWS error code}` for an API's answer (`sts:InvalidClientTokenId`, `secretsmanager:...`), where the
STS calls botocore's credential chain makes are named by their provider (`web_identity:IDPRejectedClaim`,
`assume_role:AccessDenied`); `aws:throttled:{code}` for throttling, whatever the call; `{service}:refused`, `:dns`,
`:connect_timeout`... for transport failures; `credentials:*`, `web_identity:*`, `imds:*` for what the credential
providers raise themselves (agent.aws.provider_errors).

botocore is imported inside the functions: an agent without AWS features never loads it.
"""

from __future__ import annotations

import contextlib
import functools
import re
import socket
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from agent.aws.provider_errors import retrieval_failure, setup_failure
from agent.shared.answers import CODE_SUFFIX, find_too_large
from agent.shared.reasons import Failure, Reason, chain, describe

# Every AWS API call the agent makes or causes (botocore's chain calls STS for EKS web identity and for role
# profiles): operation -> (botocore service name, code prefix). tests/aws/test_error_models.py walks botocore's
# service model of each, so no error code a model lists can classify as `unknown`. A new call goes here, with the
# hints of its codes.
AWS_CALLS: Mapping[str, tuple[str, str]] = {
    "GetCallerIdentity": ("sts", "sts"),
    "AssumeRole": ("sts", "assume_role"),
    "AssumeRoleWithWebIdentity": ("sts", "web_identity"),
    "GetSecretValue": ("secretsmanager", "secretsmanager"),
    "GetParameter": ("ssm", "parameter"),  # SSM Parameter Store: `parameter:ParameterNotFound`
}
# botocore service name -> its service ID (the name users know; AWS_ENDPOINT_URL_<SERVICE_ID> overrides its endpoint).
SERVICE_NAMES: Mapping[str, str] = {"sts": "STS", "secretsmanager": "Secrets Manager", "rds": "RDS", "ssm": "SSM"}

AUTH_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",  # AssumeRole*: the caller's session token, or the web identity token, expired
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "AuthFailure",
        "NotAuthorized",
        "RequestExpired",  # the task's clock is off by more than 5 minutes
        "AccessDenied",
        "AccessDeniedException",
        "DecryptionFailure",  # Secrets Manager could not use the KMS key on our behalf
        "KMSAccessDeniedException",
        "InvalidKeyId",  # SSM GetParameter: the parameter's KMS key is disabled, deleted, or not one this role may use
        "IDPRejectedClaim",  # AssumeRoleWithWebIdentity: the role's trust policy does not accept the token's claims
        "InvalidIdentityToken",  # AssumeRoleWithWebIdentity: the token's issuer is not an IAM OIDC provider here
    }
)
CONFIG_CODES = frozenset(
    {
        "ResourceNotFoundException",
        "InvalidRequestException",  # Secrets Manager: e.g. the secret is scheduled for deletion
        "InvalidParameterException",
        "InvalidParameterValue",
        "InvalidParameterCombination",
        "MissingParameter",
        "ValidationError",
        "ValidationException",
        "DBInstanceNotFound",
        "InvalidAction",  # the endpoint does not know the operation: AWS_ENDPOINT_URL points elsewhere
        "MissingAction",
        "MalformedQueryString",
        "InvalidQueryParameter",
        "OptInRequired",  # the account is not subscribed to the service (or the region is not enabled)
        "RegionDisabledException",  # STS is not activated in the region of the endpoint called
        "MalformedPolicyDocument",
        "PackedPolicyTooLarge",
        "ParameterNotFound",  # SSM GetParameter: no such name (or no such label) in the region
        "ParameterVersionNotFound",  # SSM GetParameter: the name exists, the `:VERSION` asked for does not
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
        "IDPCommunicationError",  # STS could not reach the token's OIDC issuer; transient
        "InternalServerError",  # SSM's name for its 500
    }
)
# SigV4's answers to a request signed more than 5 minutes from AWS's time: SignatureDoesNotMatch (query services such
# as STS) or InvalidSignatureException (JSON services such as Secrets Manager), with "Signature expired: <signed> is
# now earlier than <server> (<server> - 5 min.)" or "Signature not yet current: <signed> is still later than <server>
# (<server> + 5 min.)". Not a wrong secret key: the same code with another message is one.
CLOCK_SKEW_CODE = "aws:clock_skew"
CLOCK_SKEW_CODES = frozenset({"SignatureDoesNotMatch", "InvalidSignatureException"})
CLOCK_SKEW_MESSAGES = ("Signature expired", "Signature not yet current")
NO_CREDENTIALS_MESSAGE = (
    "no AWS credentials: the task definition has no task role (taskRoleArn), and no other source"
    " (AWS_ACCESS_KEY_ID, AWS_PROFILE, instance role) provided any"
)
# Set by note_endpoint and note_operation (botocore event handlers AwsClients registers): an error answer's URL (in
# its ResponseMetadata), and the operation a transport error broke (an attribute of the exception).
ENDPOINT_KEY = "AgentEndpoint"
CALL_ATTRIBUTE = "agent_aws_operation"
_XML_CODE = re.compile(r"<Code>([^<]+)</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]*)</Message>")
_KMS_TEXT = re.compile(r"AWSKMS|kms:|\bKMS\b|ciphertext|master key", re.IGNORECASE)
KMS_ACCESS_DENIED = "kms_access_denied"


def classify(exc: BaseException, service: str = "aws", files: Mapping[str, str] | None = None) -> Failure | None:
    """A Failure for a botocore/aiobotocore exception raised while talking to `service`, or None.

    `files` maps a credentials file's path to the variable naming it (see AwsClients.credential_files).
    """
    from botocore.exceptions import ClientError, CredentialRetrievalError, EndpointConnectionError
    from botocore.parsers import ResponseParserError

    if (too_large := find_too_large(exc)) is not None:  # the capped HTTP session (agent/aws/capped_http.py)
        return Failure(Reason.SERVER, f"{too_large.source or service}:{CODE_SUFFIX}", str(too_large))
    if isinstance(exc, ClientError):
        return _client_error(exc, service)
    if isinstance(exc, ResponseParserError):
        return Failure(Reason.SERVER, f"{service}:bad_response", f"the answer cannot be read: {describe(exc)}")
    if isinstance(exc, CredentialRetrievalError):
        return retrieval_failure(exc, classify)
    for kind, reason, suffix, what in _transport_table():
        if isinstance(exc, kind):
            operation = str(getattr(exc, CALL_ATTRIBUTE, ""))
            service = AWS_CALLS[operation][0] if operation in AWS_CALLS else service
            if isinstance(exc, EndpointConnectionError) and _is_dns(exc):
                reason, suffix, what = Reason.DNS, "{service}:dns", "name does not resolve"
            details = call_details(operation, getattr(exc, "kwargs", {}).get("endpoint_url"))
            return Failure(reason, suffix.format(service=service), f"{what}: {describe(exc)}", details=details)
    return setup_failure(exc, files or {})


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
    endpoint = exc.response.get("ResponseMetadata", {}).get(ENDPOINT_KEY)
    operation = str(exc.operation_name)
    prefix = AWS_CALLS[operation][1] if operation in AWS_CALLS else service
    reason = _reason_for(code, status)
    suffix = _kms_refined(operation, code, message)
    full_code = f"aws:throttled:{code}" if reason is Reason.THROTTLED else f"{prefix}:{suffix}"
    if code in CLOCK_SKEW_CODES and any(text in message for text in CLOCK_SKEW_MESSAGES):
        reason, full_code = Reason.AUTH, CLOCK_SKEW_CODE  # the clock, not the secret key: see CLOCK_SKEW_MESSAGES
    text = f"{operation} failed: {code}: {message}".rstrip(": ")
    return Failure(reason, full_code, text, details=call_details(operation, endpoint))


def _kms_refined(operation: str, code: str, message: str) -> str:
    """SSM answers a KMS refusal inside GetParameter with its own AccessDeniedException, the KMS text in the message
    ("... (Service: AWSKMS; ...)", "not authorized to perform: kms:Decrypt", "The ciphertext refers to a customer
    master key ..."): `kms_access_denied`, which needs kms:Decrypt, not ssm:GetParameter (as DecryptionFailure is
    told apart for Secrets Manager)."""
    if operation == "GetParameter" and code in ("AccessDeniedException", "AccessDenied") and _KMS_TEXT.search(message):
        return KMS_ACCESS_DENIED
    return code


def call_details(operation: str | None, endpoint: object) -> dict[str, str]:
    """The failed call's facts for a result's details: `aws_operation`, and `aws_endpoint` as scheme://host[:port]."""
    details = {"aws_operation": operation} if operation else {}
    if isinstance(endpoint, str) and endpoint:
        parts = urlsplit(endpoint)
        details["aws_endpoint"] = f"{parts.scheme}://{parts.netloc}" if parts.netloc else endpoint
    return details


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


def note_endpoint(http_response: Any, parsed: Any, **_: Any) -> None:
    """botocore `after-call` handler: an error answer keeps the URL that gave it (the hints name that endpoint)."""
    if http_response is not None and http_response.status_code >= 300 and isinstance(parsed, dict):
        parts = urlsplit(str(http_response.url))  # scheme and host only: a path or query is no one's business
        parsed.setdefault("ResponseMetadata", {})[ENDPOINT_KEY] = f"{parts.scheme}://{parts.netloc}"


def note_operation(exception: BaseException | None, event_name: str, **_: Any) -> None:
    """botocore `after-call-error` handler: a transport error keeps the operation it broke (the innermost one,
    e.g. the chain's AssumeRoleWithWebIdentity inside a GetSecretValue)."""
    if exception is not None and not hasattr(exception, CALL_ATTRIBUTE):
        with contextlib.suppress(AttributeError):  # an exception type with __slots__: nothing to note
            setattr(exception, CALL_ATTRIBUTE, event_name.rsplit(".", 1)[-1])


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
    CLOCK_SKEW_CODE: (
        "this task's clock is off from AWS's by more than SigV4 allows ({clock_skew}); AWS refuses every request,"
        " and the database every RDS IAM token, signed more than 5 minutes off. On ECS on EC2 the container"
        " has the instance's clock: on the instance run `chronyc tracking` and `chronyc sources`, and point chrony"
        " at the Amazon Time Sync Service (server 169.254.169.123 prefer iburst, or fd00:ec2::123 on Nitro"
        " instances over IPv6). On Fargate AWS keeps the clock synced itself: check that AWS_ENDPOINT_URL or an"
        " HTTPS proxy does not answer in AWS's place with its own Date, and that the image does not fake the time"
        " (libfaketime); otherwise replace the task and report it to AWS Support"
    ),
    "throttled": (
        "AWS is throttling {service} for this account: fewer calls fleet-wide help (the agent caches secrets"
        " for AGENT_SECRET_REFRESH_SECONDS and verifies credentials with STS only now and then); retry later"
    ),
}
