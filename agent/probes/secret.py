"""Can this task read its database password from Secrets Manager? (GetSecretValue, cached between runs)"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import SecretStr

from agent.aws.clients import AwsClients
from agent.aws.hints import aws_hint, call_facts
from agent.config.facts import target_facts
from agent.config.models import TargetConfig
from agent.probes.base import Details, TargetState, now
from agent.probes.credentials import credential_facts
from agent.probes.rotation import PendingSecret
from agent.probes.stored_password import StoredPassword
from agent.shared.reasons import Failure, ProbeFailure, Reason, Scope
from agent.shared.redact import SECRETS

_REJECTED_CREDENTIALS = (
    "AWS rejected the credentials themselves, before looking at the secret; run"
    " `aws sts get-caller-identity` (the credentials probe says more)"
)
_HINTS = {
    "auth": (
        "the task role may not read this secret; allow `secretsmanager:GetSecretValue` on {secret_arn} in the"
        " task role's policy (and the secret's resource policy must not deny it); check with"
        " `aws secretsmanager get-secret-value --secret-id {secret_id} --region {region} --query ARN`"
    ),
    "secretsmanager:DecryptionFailure": (
        "the secret is encrypted with a KMS key the task role may not use: allow `kms:Decrypt` on that key"
        " (`aws secretsmanager describe-secret --secret-id {secret_id} --region {region} --query KmsKeyId`)"
        " in the role's policy and the key policy, besides `secretsmanager:GetSecretValue` on {secret_arn}"
    ),
    "secretsmanager:ResourceNotFoundException": (
        "there is no secret {secret_id} in {region}: check the name and region with `aws secretsmanager"
        " describe-secret --secret-id {secret_id} --region {region}`; AGENT_DB_SECRET_ID also takes the full"
        " ARN, which carries the region"
    ),
    "secretsmanager:InvalidRequestException": (
        "the secret cannot be read in its current state (usually: scheduled for deletion): restore it with"
        " `aws secretsmanager restore-secret --secret-id {secret_id} --region {region}` or point"
        " AGENT_DB_SECRET_ID at the current secret"
    ),
    "secret:no_password": (
        'store the secret as RDS does, JSON with "username" and "password" keys, or as a plain string'
        " holding only the password"
    ),
    "secret:no_username": (
        'the secret has no "username" and the DSN names no user: add "username" to the secret, or put the'
        " user in the DSN ({dsn}) or AGENT_DB_USER"
    ),
    "secret:malformed_json": (
        "the secret starts with '{{' but is not valid JSON: fix it in the console or with"
        " `aws secretsmanager put-secret-value --secret-id {secret_id} --region {region}`"
    ),
    "secret:not_text": "store the password as SecretString (text), not SecretBinary",
    "secret:no_region": "set AGENT_AWS_REGION, or give AGENT_DB_SECRET_ID as the secret's full ARN",
    "network": (
        "cannot reach {service} at {aws_host}: allow outbound HTTPS (443) to {aws_host} (security group, NAT"
        " gateway or a {service} VPC endpoint)"
    ),
    "server": "Secrets Manager answered with a server error; usually transient: it is retried next run",
}
_HINTS["dns"] = _HINTS["timeout"] = _HINTS["tls"] = _HINTS["network"]
for _code in (
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
):
    _HINTS[f"secretsmanager:{_code}"] = _REJECTED_CREDENTIALS


@dataclass(frozen=True, slots=True)
class ParsedSecret:
    """What a secret holds: RDS JSON or a plain password. The password is a SecretStr: no repr shows it."""

    password: SecretStr
    user: str | None = None
    fields: tuple[str, ...] = ()  # the JSON keys, for details (names only)
    host: str | None = None
    port: str | None = None
    dbname: str | None = None


class SecretProbe(StoredPassword):
    """Fetches target.secret_id, parses it, and hands user and password to the database probe.

    With `refresh_seconds`, a run within that age of the last fetch does not call AWS (GetSecretValue is
    billed per call); `state.clear_secret()` forces the next fetch. None fetches every run (`check`).
    """

    name: ClassVar[str] = "secret"
    stored_in: ClassVar[str] = "secret"
    failure_scope: ClassVar[Scope | None] = None  # by reason

    def __init__(
        self, target: TargetConfig, state: TargetState, aws: AwsClients, refresh_seconds: float | None = None
    ) -> None:
        if target.secret_id is None:
            raise ValueError(f"target {target.name} has no secret_id")
        super().__init__(target, state, aws, target.secret_id, refresh_seconds)
        self._secret_id = target.secret_id
        self.version_id: str | None = None  # of the AWSCURRENT version last read

    async def run(self) -> Details:
        """Return the cached secret if young enough, else fetch and parse it into the target's state."""
        cached = self._cached()
        if cached is not None:
            return cached
        region = self._region_to_read()
        self._step = f"GetSecretValue {self._secret_id} in {region}"
        # AWSCURRENT is what GetSecretValue returns without a stage; named, like AWS's own rotation templates do,
        # because the pending read names its stage too (and moto 5.2 keeps serving the old version otherwise).
        answer = await self._aws.call(
            "secretsmanager", "GetSecretValue", region, SecretId=self._secret_id, VersionStage="AWSCURRENT"
        )
        self.arn = str(answer["ARN"]) if answer.get("ARN") else self.arn
        self.version_id = _text(answer.get("VersionId"))
        self._step = "reading the secret"
        parsed = parse_secret(_secret_text(answer, self._secret_id), self._secret_id)
        if parsed.user is None and self._config.user is None:
            raise ProbeFailure(
                Reason.CONFIG,
                "secret:no_username",
                f"secret {self._secret_id} has no username and the DSN names no user",
            )
        self._state.secret_user = parsed.user
        self._state.secret_password = parsed.password
        self._state.secret_fetched_at = now()
        self._details = _details(parsed, self.arn or self._secret_id, region, answer)
        return {**self._details, "cached": "false", "age_seconds": "0"}

    async def fetch_pending(self) -> PendingSecret | None:
        """The secret's AWSPENDING version, parsed; None when it has none (no rotation in flight).

        For the database probe, only after the AWSCURRENT password was rejected and read again unchanged: never on
        the normal cadence (GetSecretValue is billed per call). Counted like every AWS call. Raises ProbeFailure
        when the version cannot be read (classified through the AWS table) or parsed.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        region = self._region_to_read()
        try:
            answer = await self._aws.call(
                "secretsmanager", "GetSecretValue", region, SecretId=self._secret_id, VersionStage="AWSPENDING"
            )
        except (ClientError, BotoCoreError) as exc:
            failure = self._aws.classify(exc, "secretsmanager")
            if failure is None:
                raise
            if failure.code == "secretsmanager:ResourceNotFoundException":  # the stage is attached to no version
                return None
            raise ProbeFailure(failure.reason, failure.code, failure.message, details=failure.details) from None
        parsed = parse_secret(_secret_text(answer, self._secret_id), self._secret_id)  # registers the password
        return PendingSecret(parsed.password, parsed.user, _text(answer.get("VersionId")), self.version_id, region)

    def classify(self, exc: BaseException) -> Failure | None:
        """Map a botocore exception through the AWS table (Secrets Manager)."""
        return self._aws.classify(exc, "secretsmanager")

    def hint(self, failure: Failure) -> str:
        """The next step, with this target's secret, region and the secret's ARN filled in."""
        facts = {**target_facts(self._config), **credential_facts(self._aws, None)}
        region = self.region or "<region>"
        facts.update(call_facts(failure, "secretsmanager", self._aws.endpoint_url("secretsmanager", self.region)))
        facts.update(region=region, secret_id=self._secret_id)
        facts["secret_arn"] = self.arn or (
            self._secret_id
            if self._secret_id.startswith("arn:")
            else f"arn:aws:secretsmanager:{region}:{facts.get('account', '<account>')}:secret:{self._secret_id}-*"
        )
        return aws_hint(failure, facts, _HINTS)


def parse_secret(text: str, secret_id: str) -> ParsedSecret:
    """RDS-style JSON (username, password, host, port, dbname) or a plain string that is the password."""
    SECRETS.add(text)
    if not text.lstrip().startswith("{"):
        return _plain(text, secret_id)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:  # exc.msg and the position never include the secret's content
        raise ProbeFailure(
            Reason.CONFIG,
            "secret:malformed_json",
            f"secret {secret_id} starts with '{{' but is not valid JSON ({exc.msg} at line {exc.lineno}"
            f" column {exc.colno})",
        ) from None
    password = data.get("password")
    if isinstance(password, int) and not isinstance(password, bool):
        password = str(password)  # a numeric password stored without quotes
    if not isinstance(password, str) or not password:
        raise ProbeFailure(Reason.CONFIG, "secret:no_password", f'secret {secret_id} has no "password" key')
    SECRETS.add(password)
    return ParsedSecret(
        password=SecretStr(password),
        user=_text(data.get("username")),
        fields=tuple(sorted(str(k) for k in data)),
        host=_text(data.get("host")),
        port=_text(data.get("port")),
        dbname=_text(data.get("dbname")),
    )


def _plain(text: str, secret_id: str) -> ParsedSecret:
    if not text:
        raise ProbeFailure(Reason.CONFIG, "secret:no_password", f"secret {secret_id} is empty")
    return ParsedSecret(password=SecretStr(text))


def _secret_text(answer: dict[str, Any], secret_id: str) -> str:
    text = answer.get("SecretString")
    if isinstance(text, str):
        return text
    if "SecretBinary" not in answer:  # AWS always sends one of the two: a proxy or stub answered this
        message = f"GetSecretValue {secret_id} answered without SecretString or SecretBinary"
        raise ProbeFailure(Reason.SERVER, "secretsmanager:bad_response", message)
    try:
        return bytes(answer.get("SecretBinary") or b"").decode("utf-8")
    except UnicodeDecodeError:
        raise ProbeFailure(
            Reason.CONFIG, "secret:not_text", f"secret {secret_id} is binary, not a text password"
        ) from None


def _details(parsed: ParsedSecret, arn: str, region: str, answer: dict[str, Any]) -> dict[str, str]:
    details = {"arn": arn, "region": region, "format": "json" if parsed.fields else "plain"}
    if answer.get("VersionId"):
        details["version_id"] = str(answer["VersionId"])
    if parsed.fields:
        details["fields"] = ",".join(parsed.fields)
    for key, value in (("user", parsed.user), ("secret_host", parsed.host), ("secret_port", parsed.port)):
        if value:
            details[key] = value
    if parsed.dbname:
        details["secret_dbname"] = parsed.dbname
    return details


def _text(value: object) -> str | None:
    return str(value) if value is not None and value != "" else None
