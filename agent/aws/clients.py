"""One aiobotocore session and its long-lived clients: every AWS call the agent makes goes through here.

aiobotocore is imported only when an AwsClients is entered, so an agent without AWS features never loads it
(start-up time and memory matter: this runs beside every task of a fleet).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from agent.aws.capped_http import capped
from agent.aws.clock import note_date
from agent.aws.container import container_fetcher, refuse_redirects
from agent.aws.endpoint_data import use_lean_endpoint_data
from agent.aws.errors import note_endpoint, note_operation
from agent.config.aws_env import (
    WEB_IDENTITY_TOKEN_FILE,
    ProxySettings,
    WebIdentity,
    aws_environ,
    proxy_settings,
    web_identity,
)
from agent.shared.counters import COUNTERS
from agent.shared.reasons import Failure, Reason
from agent.shared.redact import SECRETS

if TYPE_CHECKING:
    from typing import Self

RELATIVE_URI = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"
FULL_URI = "AWS_CONTAINER_CREDENTIALS_FULL_URI"
TOKEN_FILE = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
TOKEN = "AWS_CONTAINER_AUTHORIZATION_TOKEN"
ECS_CREDENTIALS_HOST = "http://169.254.170.2"
RDS_TOKEN_EXPIRES_SECONDS = 900  # RDS IAM auth tokens are valid for 15 minutes (what AWS's own signers use)
MAX_ATTEMPTS = 2  # legacy retries turned one throttled call into 5 calls and ~10 s
# botocore's standard mode sleeps up to 1 s before a retry; the attempts share what is left of the timeout.
_RETRY_BACKOFF_MAX = 1.0
_CONTAINER_FETCH_SHARE = 0.3  # of the probe's timeout, for one container credentials fetch

ClientKey = tuple[str, str | None, str | None]


def attempt_budget(timeout_seconds: float) -> tuple[int, float]:
    """How many calls one API request may make, and each one's timeout, to fit the probe's timeout.

    A retry only helps if both attempts plus botocore's backoff fit; with a small budget one attempt that
    gets (nearly) all of it beats two that each time out too early.
    """
    shared = 0.9 * (timeout_seconds - _RETRY_BACKOFF_MAX) / MAX_ATTEMPTS
    if shared >= 1.0:
        return MAX_ATTEMPTS, shared
    return 1, 0.9 * timeout_seconds  # (service, region, access key of explicit credentials)


@dataclass(frozen=True, slots=True)
class ContainerEndpoint:
    """Where botocore's container provider fetches credentials from; names and paths only, never a token."""

    variable: str  # the AWS_CONTAINER_CREDENTIALS_* variable that was used
    url: str
    token_variable: str | None  # which authorization token variable is set, if any
    token_file: str | None


def container_endpoint(environ: Mapping[str, str]) -> ContainerEndpoint | None:
    """The container credentials endpoint as botocore reads it (RELATIVE_URI wins over FULL_URI)."""
    if RELATIVE_URI in environ:
        variable, url = RELATIVE_URI, ECS_CREDENTIALS_HOST + environ[RELATIVE_URI]
    elif FULL_URI in environ:
        variable, url = FULL_URI, environ[FULL_URI]
    else:
        return None
    token_variable = TOKEN_FILE if TOKEN_FILE in environ else TOKEN if TOKEN in environ else None
    return ContainerEndpoint(variable, url, token_variable, environ.get(TOKEN_FILE))


class AwsClients:
    """One aiobotocore session, a credential chain that fails fast, and clients reused per (service, region).

    Use as `async with AwsClients(timeout_seconds=5) as aws:`. The endpoint comes from botocore itself
    (AWS_ENDPOINT_URL and friends), so tests and the sandbox need no special path.
    """

    def __init__(self, timeout_seconds: float, environ: Mapping[str, str] | None = None) -> None:
        self.timeout_seconds = timeout_seconds
        # botocore reads os.environ itself; we read the same mapping only to name the endpoint in hints.
        self._environ = aws_environ() if environ is None else environ
        self._session: Any = None
        self._resolver: Any = None
        self._clients: dict[ClientKey, Any] = {}
        self._lock = asyncio.Lock()
        self.account_id: str | None = None  # the account STS last confirmed these credentials belong to (hints)

    async def __aenter__(self) -> Self:
        from aiobotocore.session import get_session

        self._session = get_session()
        use_lean_endpoint_data(self._session)  # -6.8 MiB: agent/aws/endpoint_data.py
        # Registered before any client exists (clients copy the session's handlers when created), so the chain's
        # own STS clients (web identity, role profiles) note their calls too.
        self._session.register("after-call", note_endpoint)
        self._session.register("after-call-error", note_operation)
        self._session.register("after-call", note_date)  # each answer's Date against this clock (clock skew)
        # The default config of every client of the session, the chain's own STS clients included (botocore merges
        # it under theirs): without it a throttled AssumeRoleWithWebIdentity retries in legacy mode, 5 calls and
        # ~10 s, and the credentials probe times out instead of saying `throttled`.
        self._session.set_default_client_config(_client_config(self.timeout_seconds))
        self._resolver = _fast_resolver(self._session, self.timeout_seconds, self._environ)
        # The session's clients load credentials through the same fast chain as the credentials probe.
        self._session.register_component("credential_provider", self._resolver)
        return self

    async def __aexit__(
        self, _exc_type: type[BaseException] | None, exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every client."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()

    @property
    def container_endpoint(self) -> ContainerEndpoint | None:
        """The container credentials endpoint this task uses, if any."""
        return container_endpoint(self._environ)

    @property
    def web_identity(self) -> WebIdentity:
        """EKS web identity (IRSA) variables, as set."""
        return web_identity(self._environ)

    @property
    def proxies(self) -> ProxySettings:
        """HTTP(S)_PROXY and NO_PROXY, as set (proxies as host:port only)."""
        return proxy_settings(self._environ)

    def credential_files(self) -> dict[str, str]:
        """Token files the credential chain reads: path -> the variable that names it."""
        files = {}
        endpoint = self.container_endpoint
        if endpoint is not None and endpoint.token_file:
            files[endpoint.token_file] = TOKEN_FILE
        if self.web_identity.token_file:
            files[self.web_identity.token_file] = WEB_IDENTITY_TOKEN_FILE
        return files

    def classify(self, exc: BaseException, service: str) -> Failure | None:
        """agent.aws.errors.classify, knowing which variable named each token file."""
        from agent.aws.errors import classify

        return classify(exc, service, self.credential_files())

    def endpoint_url(self, service: str, region: str | None) -> str | None:
        """The endpoint an open client for (service, region) calls (its meta.endpoint_url), if one is open."""
        for (name, client_region, _), client in self._clients.items():
            if (name, client_region) == (service, region):
                return cast(str, client.meta.endpoint_url)
        return None

    async def load_credentials(self) -> Any:
        """Credentials fresh from the provider chain (not the session's cache), or None if there are none.

        The session keeps refreshable credentials until ~10 minutes before they expire; loading from the
        providers is the only way to know whether the credentials endpoint works now.
        """
        return await self._resolved().load_credentials()

    async def call(
        self, service: str, operation: str, region: str | None, *, credentials: Any = None, **params: Any
    ) -> dict[str, Any]:
        """Call `operation` (e.g. "GetSecretValue"), counted by outcome; explicit `credentials` if given."""
        from botocore import xform_name

        with _Counted(service, operation):
            client = await self.client(service, region, credentials)
            try:
                response = await getattr(client, xform_name(operation))(**params)
            except KeyError as exc:  # botocore's XML parser, on a 200 answer without the operation's result
                from botocore.parsers import ResponseParserError

                raise ResponseParserError(f"the {operation} answer has no {exc} element") from None
        return cast(dict[str, Any], response)

    async def generate_db_auth_token(self, host: str, port: int, user: str, region: str) -> str:
        """An RDS IAM auth token: signed locally (no request, so not counted as an AWS call).

        The same SigV4 presigned URL as the RDS client's generate_db_auth_token (the fault suite compares them),
        signed here directly: an RDS client would load the RDS service model, 4.4 MiB of RSS, for one local step.
        """
        from botocore.auth import SigV4QueryAuth
        from botocore.awsrequest import AWSRequest
        from botocore.exceptions import NoCredentialsError

        credentials = await self._resolved_session().get_credentials()  # refreshable, shared with the clients
        if credentials is None:
            raise NoCredentialsError()
        frozen = await credentials.get_frozen_credentials()
        request = AWSRequest(method="GET", url=f"https://{host}:{port}/", data={"Action": "connect", "DBUser": user})
        SigV4QueryAuth(frozen, "rds-db", region, expires=RDS_TOKEN_EXPIRES_SECONDS).add_auth(request)
        # RDS wants the URL without its scheme; botocore adds one only to parse the host.
        return cast(str, request.prepare().url)[len("https://") :]

    async def client(self, service: str, region: str | None, credentials: Any = None) -> Any:
        """The long-lived client for (service, region); one per access key when credentials are explicit."""
        key: ClientKey = (service, region, credentials.access_key if credentials is not None else None)
        async with self._lock:
            client = self._clients.get(key)
            if client is None:
                if credentials is not None:
                    await self._drop_stale(key)
                client = await self._open(service, region, credentials)
                self._clients[key] = client
        return client

    async def _open(self, service: str, region: str | None, credentials: Any) -> Any:
        config = self._resolved_session().get_default_client_config()
        explicit: dict[str, Any] = {}
        if credentials is not None:
            explicit = {
                "aws_access_key_id": credentials.access_key,
                "aws_secret_access_key": credentials.secret_key,
                "aws_session_token": credentials.token,
            }
        context = self._resolved_session().create_client(service, region_name=region, config=config, **explicit)
        return await context.__aenter__()  # closed by aclose(): clients outlive any one `async with`

    async def _drop_stale(self, key: ClientKey) -> None:
        """Close clients made for credentials that were since replaced (a rotated access key)."""
        for old in [k for k in self._clients if k[:2] == key[:2] and k[2] is not None and k != key]:
            await self._clients.pop(old).close()

    def _resolved(self) -> Any:
        if self._resolver is None:
            raise RuntimeError("AwsClients used outside `async with`")
        return self._resolver

    def _resolved_session(self) -> Any:
        self._resolved()
        return self._session


def _client_config(timeout_seconds: float) -> Any:
    """Every client's config, the credential chain's own STS clients included (the session's default)."""
    from aiobotocore.config import AioConfig
    from aiobotocore.httpsession import AIOHTTPSession

    attempts, per_attempt = attempt_budget(timeout_seconds)
    return AioConfig(
        connect_timeout=per_attempt,
        read_timeout=per_attempt,
        retries={"total_max_attempts": attempts, "mode": "standard"},
        http_session_cls=capped(AIOHTTPSession),  # no body past the cap (agent/aws/capped_http.py)
    )


class _Counted:
    """Counts one AWS call by outcome when the block ends: "success", or the failure's reason."""

    def __init__(self, service: str, operation: str) -> None:
        self.service, self.operation = service, operation

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, _exc_type: type[BaseException] | None, exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        COUNTERS.aws_call(self.service, self.operation, _outcome(exc, self.service))


def _outcome(exc: BaseException | None, service: str) -> str:
    from agent.aws.errors import classify

    if exc is None:
        return "success"
    if isinstance(exc, asyncio.CancelledError):  # the probe's timeout cancelled the call
        return Reason.TIMEOUT.value
    failure = classify(exc, service)
    return failure.reason.value if failure else Reason.UNKNOWN.value


def _fast_resolver(session: Any, timeout_seconds: float, environ: Mapping[str, str]) -> Any:
    """botocore's standard chain, with a container provider that gives up within the probe's timeout, registers
    its authorization token as a secret, and (like the instance metadata provider) never follows a redirect.

    The default container fetcher tries 3 times with a 2 s timeout and 1 s sleeps: ~9 s against a silent
    endpoint, longer than the probe may take.
    """
    # Private API (listed in agent/shared/private_api.py): ContainerProvider._build_headers, the instance metadata
    # provider's _role_fetcher and its _session, and the resolver's `providers` list.
    from aiobotocore.credentials import AioContainerProvider, create_credential_resolver

    class ProbeContainerProvider(AioContainerProvider):  # type: ignore[misc]
        def _build_headers(self) -> dict[str, str] | None:
            headers: dict[str, str] | None = super()._build_headers()
            if headers:  # the token botocore sends, re-read from its file on every fetch
                SECRETS.add(headers.get("Authorization"))
            return headers

    resolver = create_credential_resolver(session)
    endpoint = container_endpoint(environ)
    verify = endpoint is None or not endpoint.url.startswith("http://")
    fetcher = container_fetcher(max(0.1, timeout_seconds * _CONTAINER_FETCH_SHARE), verify)
    provider = ProbeContainerProvider(environ=environ, fetcher=fetcher)
    methods = [p.METHOD for p in resolver.providers]
    resolver.providers[methods.index(provider.METHOD)] = provider
    for instance_metadata in (p for p in resolver.providers if p.METHOD == "iam-role"):
        refuse_redirects(instance_metadata._role_fetcher._session)
    return resolver
