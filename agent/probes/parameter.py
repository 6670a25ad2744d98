"""Can this task read its database password from SSM Parameter Store? (GetParameter with decryption, cached)

The parameter's value is the password, whole, as ECS `secrets` valueFrom injects an SSM parameter into the backend
(ECS picks JSON keys out of Secrets Manager secrets only), so the agent logs in with exactly what the backend gets.
A standard parameter costs nothing per GetParameter, but every caller in the account and region shares its
throughput; the probe follows the secret's cadence (AGENT_SECRET_REFRESH_SECONDS) and the database probe's
re-reads after a rejected login (agent.probes.rereads). Parameter Store has no rotation stages, so there is no
AWSPENDING to look at: a rejected login re-reads the parameter, and that is all.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import SecretStr

from agent.aws.clients import AwsClients
from agent.aws.hints import aws_hint, call_facts
from agent.config.facts import target_facts
from agent.config.models import TargetConfig
from agent.config.parameter import parameter_name, split_selector
from agent.probes.base import NOTE, Details, TargetState, now
from agent.probes.credentials import credential_facts
from agent.probes.stored_password import StoredPassword
from agent.shared.hints import render
from agent.shared.reasons import Failure, ProbeFailure, Reason, Scope
from agent.shared.redact import SECRETS

_REJECTED_CREDENTIALS = (
    "AWS rejected the credentials themselves, before looking at the parameter; run"
    " `aws sts get-caller-identity` (the credentials probe says more)"
)
_GET = "`aws ssm get-parameter --name {parameter} --with-decryption --region {region} --query Parameter.ARN`"
_HINTS = {
    "auth": (
        "the task role may not read parameter {parameter_name}: allow `ssm:GetParameter` on {parameter_arn} in the"
        " policy of the task role (taskRoleArn), then check from the task with " + _GET
    ),
    "parameter:kms_access_denied": (
        "parameter {parameter_name} is a SecureString whose KMS key the task role may not use: allow `kms:Decrypt`"
        " on that key in the task role's policy (with the condition kms:ViaService = ssm.{region}.amazonaws.com)"
        " and in the key's policy, besides `ssm:GetParameter` on {parameter_arn}; the key is in `aws ssm"
        " describe-parameters --parameter-filters Key=Name,Values={parameter_name} --region {region} --query"
        " Parameters[0].KeyId`"
    ),
    "parameter:InvalidKeyId": (
        "the KMS key that encrypts parameter {parameter_name} cannot be used (disabled, pending deletion, or"
        " not a symmetric key): see its state with `aws kms describe-key --key-id KEY`, where KEY is `aws ssm"
        " describe-parameters --parameter-filters Key=Name,Values={parameter_name} --region {region} --query"
        " Parameters[0].KeyId`; enable it, or store the parameter again under a usable key. The task role needs"
        " `kms:Decrypt` on that key and `ssm:GetParameter` on {parameter_arn}"
    ),
    "parameter:ParameterNotFound": (
        "there is no parameter {parameter} in {region}{label_note}: check the name, which is"
        " case sensitive, and the region with `aws ssm get-parameter --name {parameter} --region {region} --query"
        " Parameter.ARN`; AGENT_DB_PASSWORD_PARAMETER also takes the parameter's ARN, which carries the region"
    ),
    "parameter:ParameterVersionNotFound": (
        "parameter {parameter_name} has no version {selector}: `aws ssm get-parameter-history --name"
        " {parameter_name} --region {region} --query Parameters[].Version` lists those kept (the last 100); drop"
        " the :VERSION to read the latest one, which is what ECS injects for a valueFrom without one"
    ),
    "parameter:no_region": "set AGENT_AWS_REGION, or give AGENT_DB_PASSWORD_PARAMETER as the parameter's ARN",
    "throttled": (
        "Parameter Store is throttling GetParameter in {region}: its standard throughput (40 calls per second by"
        " default) is shared by every caller in the account and region, ECS injecting `secrets` at task start"
        " included. The agent reads {parameter_name} every AGENT_SECRET_REFRESH_SECONDS; a longer one, or fewer"
        " callers fleet-wide, helps; higher throughput (`aws ssm update-service-setting --setting-id"
        " arn:aws:ssm:{region}:{account}:servicesetting/ssm/parameter-store/high-throughput-enabled --setting-value"
        " true`) raises the limit and is charged per call"
    ),
    "network": (
        "cannot reach {service} at {aws_host}: allow outbound HTTPS (443) to {aws_host} (security group, NAT"
        " gateway or an SSM VPC endpoint, com.amazonaws.{region}.ssm)"
    ),
    "server": (
        "Parameter Store answered with a server error reading {parameter_name}; usually transient: it is"
        " retried next run"
    ),
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
    _HINTS[f"parameter:{_code}"] = _REJECTED_CREDENTIALS


class ParameterProbe(StoredPassword):
    """Reads target.password_parameter with decryption and hands the password to the database probe.

    With `refresh_seconds`, a run within that age of the last read does not call AWS; `state.clear_secret()`
    forces the next read. None reads every run (`check`).
    """

    name: ClassVar[str] = "parameter"
    stored_in: ClassVar[str] = "parameter"
    failure_scope: ClassVar[Scope | None] = None  # by reason

    def __init__(
        self, target: TargetConfig, state: TargetState, aws: AwsClients, refresh_seconds: float | None = None
    ) -> None:
        if target.password_parameter is None:
            raise ValueError(f"target {target.name} has no password_parameter")
        super().__init__(target, state, aws, target.password_parameter, refresh_seconds)
        self._parameter = target.password_parameter

    async def run(self) -> Details:
        """Return the cached password if young enough, else read the parameter into the target's state."""
        cached = self._cached()
        if cached is not None:
            return cached
        region = self._region_to_read()
        self._step = f"GetParameter {self._parameter} in {region}"
        answer = await self._aws.call("ssm", "GetParameter", region, Name=self._parameter, WithDecryption=True)
        parameter = answer.get("Parameter") or {}
        value = parameter.get("Value")
        if not isinstance(value, str) or not value:  # SSM never stores an empty value: a stub or proxy answered
            message = f"GetParameter {self._parameter} answered without a value"
            raise ProbeFailure(Reason.SERVER, "ssm:bad_response", message)
        SECRETS.add(value)
        self.arn = _text(parameter.get("ARN")) or self.arn
        self._state.secret_user = None  # the value is the password only: the user is the DSN's
        self._state.secret_password = SecretStr(value)
        self._state.secret_fetched_at = now()
        self._details = _details(parameter, self.arn or self._parameter, region)
        return {**self._details, "cached": "false", "age_seconds": "0"}

    def classify(self, exc: BaseException) -> Failure | None:
        """Map a botocore exception through the AWS table (SSM)."""
        return self._aws.classify(exc, "ssm")

    def hint(self, failure: Failure) -> str:
        """The next step, with this target's parameter, its ARN, region and the task role's account filled in."""
        facts = {**target_facts(self._config), **credential_facts(self._aws, None)}
        region = self.region or "<region>"
        facts.update(call_facts(failure, "ssm", self._aws.endpoint_url("ssm", self.region)))
        name = parameter_name(self._parameter)
        base, selector = split_selector(self._parameter)
        facts.update(region=region, parameter=self._parameter, parameter_name=name, selector=selector or "asked for")
        facts.setdefault("account", "<account>")
        labelled = selector and not selector.isdigit()  # GetParameter says ParameterNotFound for an unknown label
        facts["label_note"] = f" (or it has no version labelled {selector})" if labelled else ""
        computed = f"arn:aws:ssm:{region}:{facts['account']}:parameter/{name.lstrip('/')}"
        facts["parameter_arn"] = self.arn or (base if base.startswith("arn:") else computed)
        if failure.reason is Reason.THROTTLED:  # Parameter Store's own throughput, not the shared AWS words
            return render(_HINTS["throttled"], facts)
        return aws_hint(failure, facts, _HINTS)


def _details(parameter: dict[str, Any], arn: str, region: str) -> dict[str, str]:
    details = {"arn": arn, "region": region}
    for key, field in (("type", "Type"), ("version", "Version"), ("selector", "Selector")):
        if parameter.get(field) not in (None, ""):
            details[key] = str(parameter[field])
    if details.get("type") not in (None, "SecureString"):
        # ECS injects a String as readily as a SecureString; only the latter is encrypted at rest with KMS.
        details[NOTE] = f"parameter {arn} is a {details['type']}, not a SecureString: its value is stored unencrypted"
    return details


def _text(value: object) -> str | None:
    return str(value) if value is not None and value != "" else None
