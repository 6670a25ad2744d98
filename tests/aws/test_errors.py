"""The AWS classification table, code by code, with real botocore/aiohttp exception objects."""

from __future__ import annotations

import itertools
import socket

import pytest
from aiohttp.client_exceptions import ClientConnectorDNSError, ClientConnectorError
from aiohttp.client_reqrep import ConnectionKey
from botocore import exceptions as bx

from agent.aws.errors import AUTH_CODES, THROTTLING_CODES, classify, error_code
from agent.aws.hints import common_hint
from agent.shared.reasons import Failure, Reason, Scope, chain, default_scope

URL = "http://127.0.0.1:9/v2/credentials/task"


def client_error(code: str, status: int = 400, message: str = "m", operation: str = "GetSecretValue") -> Exception:
    response = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    error: Exception = bx.ClientError(response, operation)
    return error


def linked(*excs: BaseException) -> BaseException:
    """Chain exceptions outermost first, as `raise X` inside `except Y` does (__context__)."""
    for outer, inner in itertools.pairwise(excs):
        outer.__context__ = inner
    return excs[0]


def connector_key() -> ConnectionKey:
    return ConnectionKey("127.0.0.1", 9, False, True, None, None, None)


def refused() -> BaseException:
    os_error = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 9)")
    return linked(bx.EndpointConnectionError(endpoint_url=URL), ClientConnectorError(connector_key(), os_error))


def dns_failure() -> BaseException:
    gai = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return linked(bx.EndpointConnectionError(endpoint_url=URL), ClientConnectorDNSError(connector_key(), gai), gai)


def retrieval(*causes: BaseException) -> BaseException:
    """What botocore's container provider raises: CredentialRetrievalError over MetadataRetrievalError."""
    outer = bx.CredentialRetrievalError(provider="container-role", error_msg="...")
    return linked(outer, *causes)


def status_error(status: int) -> BaseException:
    text = f"Received non 200 response {status} from container metadata: boom"
    error: BaseException = bx.MetadataRetrievalError(error_msg=text)
    return error


@pytest.mark.parametrize("code", sorted(AUTH_CODES))
def test_auth_codes_are_auth(code: str) -> None:
    assert classify(client_error(code, 403, operation="GetCallerIdentity"), "sts") == Failure(
        Reason.AUTH,
        f"sts:{code}",
        f"GetCallerIdentity failed: {code}: m",
        details={"aws_operation": "GetCallerIdentity"},
    )


@pytest.mark.parametrize("code", ["ResourceNotFoundException", "InvalidRequestException", "InvalidParameterException"])
def test_config_codes_are_config(code: str) -> None:
    failure = classify(client_error(code), "secretsmanager")
    assert failure is not None and (failure.reason, failure.code) == (Reason.CONFIG, f"secretsmanager:{code}")


@pytest.mark.parametrize("code", sorted(THROTTLING_CODES))
def test_throttling_codes_are_throttled(code: str) -> None:
    failure = classify(client_error(code), "sts")
    assert failure is not None and (failure.reason, failure.code) == (Reason.THROTTLED, f"aws:throttled:{code}")


@pytest.mark.parametrize(("code", "status"), [("InternalServiceError", 500), ("SomethingNew", 503)])
def test_server_errors_are_server(code: str, status: int) -> None:
    failure = classify(client_error(code, status), "secretsmanager")
    assert failure is not None and failure.reason is Reason.SERVER


def test_unknown_code_with_a_4xx_is_unknown_but_keeps_its_code() -> None:
    failure = classify(client_error("BrandNewError", 400, operation="GetCallerIdentity"), "sts")
    assert failure is not None and (failure.reason, failure.code) == (Reason.UNKNOWN, "sts:BrandNewError")


def test_moto_xml_access_denied_inside_a_bare_403_reads_the_real_code() -> None:
    xml = (
        '<?xml version="1.0" encoding="utf-8"?>\n<ErrorResponse><Errors><Error><Code>AccessDenied</Code>'
        "<Message>User: arn:aws:sts::123456789012:assumed-role/r/s is not authorized</Message>"
        "<Type>Sender</Type></Error></Errors></ErrorResponse>"
    )
    failure = classify(client_error("403", 403, xml), "secretsmanager")
    assert failure is not None
    assert (failure.reason, failure.code) == (Reason.AUTH, "secretsmanager:AccessDenied")
    assert "<" not in failure.message and "is not authorized" in failure.message


def test_bare_403_without_a_document_is_auth() -> None:
    failure = classify(client_error("403", 403, ""), "secretsmanager")
    assert failure is not None and (failure.reason, failure.code) == (Reason.AUTH, "secretsmanager:http_403")


def test_error_code_of_an_empty_response() -> None:
    assert error_code({}) == ("unknown_error", "")


def test_no_credentials_names_the_task_role() -> None:
    failure = classify(bx.NoCredentialsError(), "secretsmanager")
    assert failure is not None and (failure.reason, failure.code) == (Reason.CONFIG, "aws:no_credentials")
    assert "taskRoleArn" in failure.message


def test_partial_credentials_are_config() -> None:
    exc = bx.PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY")
    failure = classify(exc)
    assert failure is not None and (failure.reason, failure.code) == (Reason.CONFIG, "aws:partial_credentials")
    assert "AWS_SECRET_ACCESS_KEY" in failure.message


def test_no_region_is_config() -> None:
    failure = classify(bx.NoRegionError(), "sts")
    assert failure is not None and (failure.reason, failure.code) == (Reason.CONFIG, "sts:no_region")


@pytest.mark.parametrize(
    ("exc", "reason", "code"),
    [
        (bx.ConnectTimeoutError(endpoint_url=URL), Reason.TIMEOUT, "sts:connect_timeout"),
        (bx.ReadTimeoutError(endpoint_url=URL), Reason.TIMEOUT, "sts:read_timeout"),
        (bx.SSLError(endpoint_url=URL, error="WRONG_VERSION_NUMBER"), Reason.TLS, "sts:tls"),
        (refused(), Reason.NETWORK, "sts:refused"),
        (dns_failure(), Reason.DNS, "sts:dns"),
        (bx.ConnectionClosedError(endpoint_url=URL), Reason.NETWORK, "sts:connection_closed"),
    ],
    ids=["connect-timeout", "read-timeout", "tls", "refused", "dns", "closed"],
)
def test_transport_errors(exc: BaseException, reason: Reason, code: str) -> None:
    failure = classify(exc, "sts")
    assert failure is not None and (failure.reason, failure.code) == (reason, code)


def test_connect_timeout_is_not_mistaken_for_a_refusal() -> None:
    """ConnectTimeoutError is a botocore ConnectionError: it must not fall into the generic entry."""
    assert isinstance(bx.ConnectTimeoutError(endpoint_url=URL), bx.ConnectionError)
    failure = classify(bx.ConnectTimeoutError(endpoint_url=URL))
    assert failure is not None and failure.reason is Reason.TIMEOUT


@pytest.mark.parametrize(
    ("causes", "reason", "code"),
    [
        ((bx.MetadataRetrievalError(error_msg="x"), refused()), Reason.NETWORK, "credentials:refused"),
        ((bx.MetadataRetrievalError(error_msg="x"), dns_failure()), Reason.DNS, "credentials:dns"),
        (
            (bx.MetadataRetrievalError(error_msg="x"), bx.ReadTimeoutError(endpoint_url=URL)),
            Reason.TIMEOUT,
            "credentials:read_timeout",
        ),
        (
            (bx.MetadataRetrievalError(error_msg="x"), bx.ConnectTimeoutError(endpoint_url=URL)),
            Reason.TIMEOUT,
            "credentials:connect_timeout",
        ),
        ((status_error(403),), Reason.AUTH, "credentials:http_403"),
        ((status_error(401),), Reason.AUTH, "credentials:http_401"),
        ((status_error(500),), Reason.SERVER, "credentials:http_500"),
        ((status_error(503),), Reason.SERVER, "credentials:http_503"),
        ((status_error(429),), Reason.THROTTLED, "credentials:http_429"),
        (
            (bx.MetadataRetrievalError(error_msg="Unable to parse JSON returned from container metadata"),),
            Reason.SERVER,
            "credentials:bad_response",
        ),
        ((), Reason.UNKNOWN, "credentials:retrieval_failed"),
    ],
    ids=[
        "refused",
        "dns",
        "read-timeout",
        "connect-timeout",
        "403",
        "401",
        "500",
        "503",
        "429",
        "bad-json",
        "no-cause",
    ],
)
def test_credential_retrieval_errors_are_classified_by_their_cause(
    causes: tuple[BaseException, ...], reason: Reason, code: str
) -> None:
    failure = classify(retrieval(*causes), "secretsmanager")
    assert failure is not None and (failure.reason, failure.code) == (reason, code)
    assert failure.message.startswith("could not fetch credentials from container-role")


def test_full_uri_host_value_error_is_config() -> None:
    exc = ValueError("Unsupported host 'example.com'.  Can only retrieve metadata from a loopback address")
    failure = classify(exc)
    assert failure is not None and (failure.reason, failure.code) == (Reason.CONFIG, "credentials:bad_full_uri")
    assert classify(ValueError("something else")) is None


def test_missing_token_file_is_config() -> None:
    exc = FileNotFoundError(2, "No such file or directory", "/var/run/secrets/token")
    failure = classify(exc)
    assert failure is not None and (failure.reason, failure.code) == (Reason.CONFIG, "credentials:token_file_missing")
    assert "/var/run/secrets/token" in failure.message


def test_unreadable_token_file_is_config() -> None:
    failure = classify(PermissionError(13, "Permission denied", "/token"))
    assert failure is not None and failure.code == "credentials:token_file_unreadable"


def test_still_expired_after_refresh_is_auth() -> None:
    exc = RuntimeError("Credentials were refreshed, but the refreshed credentials are still expired.")
    failure = classify(exc)
    assert failure is not None and (failure.reason, failure.code) == (Reason.AUTH, "credentials:expired")


def test_endpoint_answer_without_keys_is_server() -> None:
    failure = classify(KeyError("AccessKeyId"))
    assert failure is not None and (failure.reason, failure.code) == (Reason.SERVER, "credentials:bad_response")


def test_unrelated_exceptions_are_left_to_the_edge() -> None:
    assert classify(ZeroDivisionError()) is None
    assert classify(KeyError("other")) is None


def test_chain_stops_on_cycles() -> None:
    a, b = ValueError("a"), ValueError("b")
    a.__context__, b.__context__ = b, a
    assert list(chain(a)) == [a, b]


def test_common_hints() -> None:
    facts = {"endpoint": "E", "url": "U", "service": "STS", "token_variable": "T", "curl": "curl -s U"}
    no_creds = Failure(Reason.CONFIG, "aws:no_credentials", "")
    assert "taskRoleArn" in common_hint(no_creds, facts)
    assert "curl -s U" in common_hint(Failure(Reason.NETWORK, "credentials:refused", ""), facts)
    assert "check T" in common_hint(Failure(Reason.AUTH, "credentials:http_403", ""), facts)
    assert "throttling STS" in common_hint(Failure(Reason.THROTTLED, "aws:throttled:Throttling", ""), facts)
    assert common_hint(Failure(Reason.AUTH, "sts:InvalidClientTokenId", ""), facts) == ""


def test_credentials_endpoint_throttling_is_shared_and_its_hint_says_so() -> None:
    """HTTP 429 from the credentials endpoint is its per-host rate limit: throttled, scope shared, clears by itself."""
    failure = classify(retrieval(status_error(429)))
    assert failure is not None and default_scope(failure.reason) is Scope.SHARED
    hint = common_hint(failure, {"endpoint": "E"})
    assert "shared by every task on the host" in hint and "clears by itself" in hint


@pytest.mark.parametrize("code", sorted(THROTTLING_CODES))
def test_every_aws_throttling_answer_is_throttled_and_shared(code: str) -> None:
    """Any AWS throttling code is `throttled`, whose default scope is shared (replacing tasks would not help)."""
    failure = classify(client_error(code, 400), "secretsmanager")
    assert failure is not None and failure.reason is Reason.THROTTLED and failure.scope is None
    assert default_scope(failure.reason) is Scope.SHARED
