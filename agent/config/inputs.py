"""The shapes of what users give: the AGENT_* environment variables and the YAML file (the diagnostics
guide's `database.connections`), and pydantic's errors turned into lines that name the field."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent.config.echo import did_you_mean, shown

ECS_METADATA_VARIABLE = "ECS_CONTAINER_METADATA_URI_V4"  # set by the ECS agent in every container
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # a YAML key shown as is in a path; any other is quoted and cut


class EnvSettings(BaseSettings):
    """The AGENT_* environment variables, as given."""

    model_config = SettingsConfigDict(env_prefix="AGENT_", extra="ignore", frozen=True, env_file=None)

    db_dsn: SecretStr | None = None  # may carry a password: never echoed
    db_password: SecretStr | None = None
    db_secret_id: str | None = None
    db_password_parameter: str | None = None
    db_iam_auth: bool | None = None
    db_iam_host: str | None = None  # the RDS endpoint the IAM token is signed for (agent.config.iam_host)
    db_user: str | None = None
    db_sslrootcert: str | None = None
    db_expect_role: str | None = None
    aws_region: str | None = None
    timeout_seconds: float | None = None
    log_level: str | None = None
    host: str | None = None
    port: int | None = None
    interval_seconds: float | None = None
    secret_refresh_seconds: float | None = None
    db_reauth_seconds: float | None = None
    db_relogin_spread_seconds: float | None = None
    rotation_stuck_seconds: float | None = None
    readiness_policy: str | None = None
    failure_threshold: int | None = None
    success_threshold: int | None = None
    shutdown_grace_seconds: float | None = None
    status_detail: str | None = None
    cloudwatch_emf: bool | None = None
    cloudwatch_namespace: str | None = None
    app_url: SecretStr | None = None  # its query string may carry a key: never echoed
    app_expect_status: str | None = None


class _Section(BaseModel):
    """A YAML section every key of which the agent reads: an unknown key (a typo such as `secretid`) is refused by
    name, never ignored, since ignoring it would silently change what is checked."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            known = list(cls.model_fields)
            unknown = [key for key in data if key not in known]
            if unknown:
                keys = ", ".join(shown(key) + did_you_mean(key, known) for key in unknown[:3])
                more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
                raise ValueError(f"unknown key {keys}{more}: expected {', '.join(known)}")
        return data


class IamAuthFile(_Section):
    """`aws_iam_auth` in the diagnostics guide's YAML shape."""

    enabled: bool = False
    region: str | None = None
    db_user: str | None = None
    host: str | None = None  # the RDS endpoint to sign the token for, when the DSN's host is another name


class ConnectionFile(_Section):
    """One entry of `database.connections`."""

    dsn: str
    aws_iam_auth: IamAuthFile = IamAuthFile()
    secret_id: str | None = None
    critical: bool = True  # false: an optional database (a reporting replica) never drains the task
    expect_role: str | None = None  # writer, reader or any; unset: AGENT_DB_EXPECT_ROLE, else any
    password_parameter: str | None = None  # an SSM Parameter Store name or ARN


class DatabaseFile(BaseModel):
    model_config = ConfigDict(extra="ignore")
    connections: dict[str, ConnectionFile]

    @field_validator("connections")
    @classmethod
    def _not_empty(cls, value: dict[str, ConnectionFile]) -> dict[str, ConnectionFile]:
        if not value:
            raise ValueError("needs at least one named connection (e.g. writer: {dsn: ...})")
        return value


class LoggingFile(BaseModel):
    model_config = ConfigDict(extra="ignore")
    level: str | None = None


class AppFile(_Section):
    """`app`: the backend probe (`url`, `expect_status` as `200-399`, `200`, or a list of codes and ranges)."""

    url: str
    expect_status: str | int | list[str | int] | None = None


class ConfigFile(BaseModel):
    """The YAML file given with --config."""

    model_config = ConfigDict(extra="ignore")

    database: DatabaseFile | None = None
    logging: LoggingFile = LoggingFile()
    app: AppFile | None = None


def format_validation_error(exc: ValidationError, env_prefix: str | None) -> list[str]:
    """Turn pydantic errors into lines naming the variable (or YAML path) and what is expected."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        path = yaml_path(error["loc"])
        field = f"{env_prefix}{path.upper()}" if env_prefix is not None else path
        problems.append(f"{field}: {_expectation(error)}")
    return problems


def yaml_path(parts: Iterable[object]) -> str:
    """database.connections.writer.dsn: plain keys as they are, any other quoted and cut to length (a key may hold
    a line break or 100 KB)."""
    return ".".join(str(part) if _PLAIN_KEY.match(str(part)) else shown(part) for part in parts)


def _expectation(error: Mapping[str, Any]) -> str:
    kind = str(error.get("type", ""))
    if kind.startswith("float") or kind.startswith("int"):
        return "expected a number (e.g. 5 or 2.5)"
    if kind.startswith("bool"):
        return "expected true or false"
    if kind == "missing":
        return "is required"
    return str(error.get("msg", "is invalid")).removeprefix("Value error, ")
