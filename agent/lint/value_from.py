"""`secrets[].valueFrom`: what ECS accepts, and whether the agent's injected password and the secret (or
parameter) it re-reads are the same one.

ECS docs, "Pass Secrets Manager secrets through Amazon ECS environment variables": valueFrom is the secret's ARN,
optionally followed by `:json-key:version-stage:version-id` (all three places, each may be empty:
`arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf:password::`).
"Pass Systems Manager parameters ...": the parameter's ARN (`arn:aws:ssm:REGION:ACCOUNT:parameter/NAME`), or its
name when the parameter is in the task's Region.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ARN = re.compile(r"arn:(aws[a-z-]*):([a-z0-9-]+):([^:]*):([^:]*):(.+)", re.DOTALL)
_ACCOUNT = re.compile(r"\d{12}")
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d")
_SECRET_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")
_PARAMETER_NAME = re.compile(r"/?[A-Za-z0-9_.\-/]{1,2048}")
_SECRET_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}$")  # Secrets Manager appends 6 random characters to a full ARN
SECRET_EXAMPLE = "arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-AbCdEf[:json-key:version-stage:version-id]"
PARAMETER_EXAMPLE = "arn:aws:ssm:REGION:ACCOUNT:parameter/NAME, or the parameter's name"


class ValueFromError(ValueError):
    """A valueFrom ECS would not resolve; the message says what was expected."""


@dataclass(frozen=True)
class Reference:
    """Where a `secrets` entry points: a Secrets Manager secret (`secret` is its ARN without the json-key part)
    or an SSM parameter (`parameter` is its name, without a leading '/')."""

    secret: str | None = None
    parameter: str | None = None


def parse_value_from(value: str) -> Reference:
    """A Reference, or ValueFromError naming what is wrong (never repeating more than the ARN's shape)."""
    match = _ARN.fullmatch(value)
    if match is None:
        if value.startswith("arn:"):
            raise ValueFromError(f"not a well-formed ARN: expected {SECRET_EXAMPLE} or {PARAMETER_EXAMPLE}")
        if not _PARAMETER_NAME.fullmatch(value):
            raise ValueFromError(
                f"neither an ARN nor an SSM parameter name (letters, digits, _ . - /): expected {SECRET_EXAMPLE}"
                f" or {PARAMETER_EXAMPLE}"
            )
        return Reference(parameter=value.lstrip("/"))
    _partition, service, region, account, resource = match.groups()
    if service not in ("secretsmanager", "ssm"):
        raise ValueFromError(f"ECS injects secrets from Secrets Manager or SSM only: expected {SECRET_EXAMPLE}")
    if not _REGION.fullmatch(region) or not _ACCOUNT.fullmatch(account):
        raise ValueFromError(f"the ARN needs a Region and a 12-digit account id: expected {SECRET_EXAMPLE}")
    if service == "secretsmanager":
        return Reference(secret=_secret(value, resource))
    if resource.startswith("parameter/") and _PARAMETER_NAME.fullmatch(resource[10:]):
        return Reference(parameter=resource[10:].lstrip("/"))
    raise ValueFromError(f"not a parameter's ARN: expected {PARAMETER_EXAMPLE}")


def _secret(value: str, resource: str) -> str:
    kind, _, rest = resource.partition(":")
    parts = rest.split(":")
    if kind != "secret" or not _SECRET_NAME.fullmatch(parts[0]):
        raise ValueFromError(f"not a secret's ARN: expected {SECRET_EXAMPLE}")
    if len(parts) not in (1, 4):
        raise ValueFromError(
            f"after the secret's name ECS expects all three of :json-key:version-stage:version-id (each may be empty,"
            f" as in ...:secret:NAME-AbCdEf:password::), found {len(parts) - 1}"
        )
    return value[: len(value) - len(rest) + len(parts[0])]


def same_secret(arn: str, secret_id: str) -> bool:
    """Whether AGENT_DB_SECRET_ID (a full or partial ARN, or a name) names the secret whose ARN is `arn`."""
    if secret_id == arn:
        return True
    name = arn.split(":secret:", 1)[1]
    if secret_id.startswith("arn:"):
        return arn.startswith(secret_id) and _SECRET_SUFFIX.fullmatch(arn[len(secret_id) :]) is not None
    return secret_id in (name, _SECRET_SUFFIX.sub("", name))
