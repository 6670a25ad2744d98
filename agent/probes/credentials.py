"""Can this task get AWS credentials now, and does AWS accept them? (botocore's chain, then STS)"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from agent.aws import errors as aws_errors
from agent.aws.clients import AwsClients
from agent.aws.hints import aws_hint, call_facts
from agent.probes.base import Details, now
from agent.shared.clock import AWS_SIGNATURE_WINDOW_SECONDS, CLOCK, CLOCK_SKEW_LIMIT_SECONDS
from agent.shared.reasons import Failure, ProbeFailure, Reason, Scope
from agent.shared.redact import SECRETS

_HINTS = {
    "auth": (
        "STS rejected the {provider} credentials: run `aws sts get-caller-identity` with the same"
        " credentials; with keys in AWS_ACCESS_KEY_ID check the key is active and the secret key belongs to"
        " it (InvalidClientTokenId: unknown or deleted key; SignatureDoesNotMatch: wrong secret key)"
    ),
    "sts:ExpiredToken": (
        "the {provider} session token has expired: refresh AWS_SESSION_TOKEN if it was set by hand"
        " (a task role's credentials are refreshed by the SDK; then check the task's clock)"
    ),
    "network": (
        "cannot reach {service} at {aws_host}: allow outbound HTTPS (443) to {aws_host} (security group, NAT"
        " gateway or an STS VPC endpoint); test with `aws sts get-caller-identity --region {region}`"
    ),
    "config": "fix the AWS configuration named above, then run `aws sts get-caller-identity`",
    "server": "STS answered with a server error; usually transient: it is retried on the next run",
}
_HINTS["dns"] = _HINTS["timeout"] = _HINTS["tls"] = _HINTS["network"]
_HINTS["sts:ExpiredTokenException"] = _HINTS["sts:ExpiredToken"]


@dataclass(frozen=True, slots=True)
class CallerIdentity:
    """Who AWS says these credentials belong to (STS GetCallerIdentity)."""

    account: str
    arn: str


class CredentialsProbe:
    """Loads credentials through botocore's standard chain each run and verifies them with STS.

    `verify_every_seconds=None` (one-shot `check`) calls STS every run; in continuous mode STS is called only
    when that many seconds have passed or the access key changed, while the provider is reloaded every run.
    """

    name: ClassVar[str] = "credentials"
    failure_scope: ClassVar[Scope | None] = None  # by reason
    target = "aws"

    def __init__(self, aws: AwsClients, region: str | None, verify_every_seconds: float | None = None) -> None:
        self._aws = aws
        self._region = region
        self._verify_every = verify_every_seconds
        self._step = "not started"
        self._verified_key: str | None = None
        self._verified_at: float | None = None
        self.provider: str | None = None  # botocore's method: env, container-role, iam-role, ...
        self.expires_at: datetime | None = None  # None for credentials that do not expire
        self.identity: CallerIdentity | None = None  # the last identity STS confirmed

    @property
    def step(self) -> str:
        """What the probe is doing right now."""
        return self._step

    async def run(self) -> Details:
        """Load credentials from the providers now; verify them with STS when due."""
        self._step = "loading credentials from the provider chain"
        credentials = await self._aws.load_credentials()
        if credentials is None:
            raise ProbeFailure(Reason.CONFIG, "aws:no_credentials", aws_errors.NO_CREDENTIALS_MESSAGE)
        self.provider = str(credentials.method)
        self.expires_at = _expiry(credentials)
        if self.expires_at is not None and self.expires_at <= datetime.now(UTC):
            raise ProbeFailure(
                Reason.AUTH,
                "credentials:expired",
                f"{self.provider} returned credentials that expired at {self.expires_at.isoformat()}",
            )
        frozen = await credentials.get_frozen_credentials()
        # IRSA's credentials are deferred: botocore calls AssumeRoleWithWebIdentity, and so learns the expiry, on
        # this first fetch only.
        self.expires_at = self.expires_at or _expiry(credentials)
        SECRETS.add(frozen.secret_key)
        SECRETS.add(frozen.token)
        verified = await self._verify(frozen)
        _check_clock()
        return self._details(verified)

    async def _verify(self, frozen: Any) -> bool:
        """Call STS if due; True if it was called this run."""
        due = (
            self._verify_every is None
            or frozen.access_key != self._verified_key
            or self._verified_at is None
            or now() - self._verified_at >= self._verify_every
        )
        if not due:
            return False
        self._step = "verifying the credentials with STS GetCallerIdentity"
        self._verified_key = None  # a failed verification must be repeated on the next run
        answer = await self._aws.call("sts", "GetCallerIdentity", self._region, credentials=frozen)
        if not answer.get("Account") or not answer.get("Arn"):
            message = "GetCallerIdentity answered without Account or Arn"
            raise ProbeFailure(Reason.SERVER, "sts:bad_response", message)
        self.identity = CallerIdentity(account=str(answer["Account"]), arn=str(answer["Arn"]))
        self._aws.account_id = self.identity.account  # so every AWS hint can name it
        self._verified_key, self._verified_at = frozen.access_key, now()
        return True

    def _details(self, verified_now: bool) -> Details:
        details = {"provider": self.provider or "unknown"}
        if self.expires_at is not None:
            details["expires_at"] = self.expires_at.isoformat()
        if self.identity is not None:
            details["account"], details["arn"] = self.identity.account, self.identity.arn
        age = 0.0 if verified_now or self._verified_at is None else now() - self._verified_at
        details["verified"] = "now" if verified_now else f"{age:.0f}s ago"
        if CLOCK.seconds is not None:
            details["clock_skew_seconds"] = f"{CLOCK.seconds:+.1f}"
        return details

    def classify(self, exc: BaseException) -> Failure | None:
        """Map a botocore exception through the AWS table (STS is the only service called)."""
        return self._aws.classify(exc, "sts")

    def hint(self, failure: Failure) -> str:
        """The next step, with this task's provider, endpoint and region filled in."""
        facts = credential_facts(self._aws, self.provider)
        facts["region"] = self._region or "<region>"
        facts.update(call_facts(failure, "sts", self._aws.endpoint_url("sts", self._region)))
        return aws_hint(failure, facts, _HINTS)


def _check_clock() -> None:
    """Fail while AWS still answers: past CLOCK_SKEW_LIMIT_SECONDS the next drift makes every signature expire."""
    if CLOCK.excessive:
        raise ProbeFailure(
            Reason.AUTH,
            aws_errors.CLOCK_SKEW_CODE,
            f"{CLOCK.describe()} (the Date header of AWS's last answer against this task's clock): beyond"
            f" {CLOCK_SKEW_LIMIT_SECONDS:.0f} s the agent fails, beyond {AWS_SIGNATURE_WINDOW_SECONDS:.0f} s AWS"
            " refuses every signed request and the database every RDS IAM token",
        )


def credential_facts(aws: AwsClients, provider: str | None) -> dict[str, str]:
    """Hint values about where this task's credentials come from (names, URLs and paths, never a token)."""
    endpoint = aws.container_endpoint
    irsa = aws.web_identity
    facts = {
        "provider": provider or "AWS",
        "role_arn": irsa.role_arn or "the role in AWS_ROLE_ARN",
        "web_identity_token_file": irsa.token_file or "(unset)",
        "proxy_state": _proxy_state(aws, endpoint.url if endpoint else None),
        "endpoint_host": "169.254.170.2",
        "clock_skew": CLOCK.describe() or "see the message",
    }
    if aws.account_id:
        facts["account"] = aws.account_id
    if endpoint is None:
        facts["endpoint"] = "the credentials provider"
        return facts
    facts["endpoint"] = f"{endpoint.url} ({endpoint.variable})"
    facts["url"] = endpoint.url
    facts["endpoint_host"] = urlsplit(endpoint.url).hostname or facts["endpoint_host"]
    facts["token_variable"] = (
        f"{endpoint.token_variable}={endpoint.token_file}"
        if endpoint.token_file
        else endpoint.token_variable or "AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE)"
    )
    # The request botocore makes, as a command: the token by where it is (the file, the variable), never itself.
    header = ""
    if endpoint.token_file:
        header = f' -H "Authorization: $(cat {endpoint.token_file})"'
    elif endpoint.token_variable:
        header = f' -H "Authorization: ${endpoint.token_variable}"'
    facts["curl"] = f"curl -s{header} {endpoint.url}"
    return facts


def _proxy_state(aws: AwsClients, url: str | None) -> str:
    """What the proxy variables say about the credentials endpoint, e.g. "HTTP_PROXY=proxy:3128, NO_PROXY unset"."""
    proxies = aws.proxies
    if not proxies.any_proxy:
        return "no HTTP(S)_PROXY is set in this container, so the proxy is transparent or set elsewhere"
    host = urlsplit(url).hostname if url else None
    named = ", ".join(p for p in (proxies.http_proxy, proxies.https_proxy) if p)
    if proxies.no_proxy is None:
        return f"here {named}, and NO_PROXY is unset"
    covered = "covers" if host and proxies.bypasses(host) else "does not cover"
    return f"here {named}, and {proxies.no_proxy}, which {covered} {host or 'the endpoint'}"


def _expiry(credentials: Any) -> datetime | None:
    # botocore exposes the expiry of refreshable credentials only as the private _expiry_time
    # (private API: listed in agent/shared/private_api.py).
    expiry = getattr(credentials, "_expiry_time", None)
    return expiry.astimezone(UTC) if isinstance(expiry, datetime) else None
