"""Configuration: frozen models, and the only module that reads the environment or a config file."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent.dsn import Dsn, DsnError, Engine, SslMode, parse_dsn, parse_sslmode, region_from_host

LogLevel = Literal["debug", "info", "warning", "error"]
_SECRET_ARN_REGION = 3  # arn:aws:secretsmanager:REGION:account:secret:name
# CloudWatch's namespace rules: 1-255 of these characters, not starting with ':'; "AWS/" is reserved for AWS.
_NAMESPACE = re.compile(r"^[0-9A-Za-z._/#: -]{1,255}$")
ECS_METADATA_VARIABLE = "ECS_CONTAINER_METADATA_URI_V4"  # set by the ECS agent in every container


class ConfigError(Exception):
    """Configuration that cannot work; each problem names its field and the expected form."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class ReadinessPolicy(StrEnum):
    """How probe failures map to /ready (see README, "Readiness policy")."""

    GATE = "gate"
    STRICT = "strict"


class StatusDetail(StrEnum):
    """How much /status reveals: `summary` drops messages, hints and identity."""

    FULL = "full"
    SUMMARY = "summary"


class TargetConfig(BaseModel):
    """One database the backend needs, with how the agent gets its password."""

    model_config = ConfigDict(frozen=True)

    name: str
    engine: Engine
    host: str
    port: int
    database: str | None
    user: str | None
    sslmode: SslMode
    sslrootcert: str | None = None
    password: SecretStr | None = None
    secret_id: str | None = None
    iam_auth: bool = False
    region: str | None = None  # where AWS calls for this target go
    configured_region: str | None = None  # what the user set explicitly, compared with the host's region
    dsn: str  # rendered without password, for messages

    @property
    def uses_aws(self) -> bool:
        """Whether this target needs AWS credentials."""
        return self.iam_auth or self.secret_id is not None


Seconds = Annotated[float, Field(gt=0, le=3600)]


class AgentConfig(BaseModel):
    """Everything the agent was told, validated once and passed down."""

    model_config = ConfigDict(frozen=True)

    targets: tuple[TargetConfig, ...]
    timeout_seconds: Seconds = 5.0
    log_level: LogLevel = "info"
    aws_region: str | None = None
    host: str = "0.0.0.0"
    port: int = Field(default=8099, ge=1, le=65535)
    interval_seconds: Annotated[float, Field(ge=0.1, le=3600)] = 10.0
    secret_refresh_seconds: Annotated[float, Field(ge=1, le=86400)] = 900.0
    db_reauth_seconds: Annotated[float, Field(ge=1, le=86400)] = 300.0
    readiness_policy: ReadinessPolicy = ReadinessPolicy.GATE
    failure_threshold: int = Field(default=3, ge=1, le=100)
    success_threshold: int = Field(default=1, ge=1, le=100)
    shutdown_grace_seconds: Annotated[float, Field(ge=0, le=600)] = 5.0
    status_detail: StatusDetail = StatusDetail.FULL
    cloudwatch_emf: bool = False
    cloudwatch_namespace: str = "ECSHealthAgent"
    ecs_metadata_uri: str | None = None  # from ECS_CONTAINER_METADATA_URI_V4, not an AGENT_* variable

    @field_validator("cloudwatch_namespace")
    @classmethod
    def _cloudwatch_namespace(cls, value: str) -> str:
        if not _NAMESPACE.match(value) or value.startswith(":") or value.startswith("AWS/"):
            raise ValueError(
                f"{value!r} is not a CloudWatch namespace: expected 1-255 of A-Z a-z 0-9 . - _ / # : and space,"
                " not starting with ':' or 'AWS/' (e.g. ECSHealthAgent)"
            )
        return value

    @property
    def uses_aws(self) -> bool:
        """Whether any target needs AWS credentials."""
        return any(t.uses_aws for t in self.targets)


class EnvSettings(BaseSettings):
    """The AGENT_* environment variables, as given."""

    model_config = SettingsConfigDict(env_prefix="AGENT_", extra="ignore", frozen=True, env_file=None)

    db_dsn: SecretStr | None = None  # may carry a password: never echoed
    db_password: SecretStr | None = None
    db_secret_id: str | None = None
    db_iam_auth: bool | None = None
    db_user: str | None = None
    db_sslrootcert: str | None = None
    aws_region: str | None = None
    timeout_seconds: float | None = None
    log_level: str | None = None
    host: str | None = None
    port: int | None = None
    interval_seconds: float | None = None
    secret_refresh_seconds: float | None = None
    db_reauth_seconds: float | None = None
    readiness_policy: str | None = None
    failure_threshold: int | None = None
    success_threshold: int | None = None
    shutdown_grace_seconds: float | None = None
    status_detail: str | None = None
    cloudwatch_emf: bool | None = None
    cloudwatch_namespace: str | None = None


class IamAuthFile(BaseModel):
    """`aws_iam_auth` in the diagnostics guide's YAML shape."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    region: str | None = None
    db_user: str | None = None


class ConnectionFile(BaseModel):
    """One entry of `database.connections` (other keys of the application's config are ignored)."""

    model_config = ConfigDict(extra="ignore")

    dsn: str
    aws_iam_auth: IamAuthFile = IamAuthFile()
    secret_id: str | None = None


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


class ConfigFile(BaseModel):
    """The YAML file given with --config."""

    model_config = ConfigDict(extra="ignore")

    database: DatabaseFile | None = None
    logging: LoggingFile = LoggingFile()


def load_config(config_path: Path | None = None) -> AgentConfig:
    """Read the environment (and the YAML file, if given) into an AgentConfig, or raise ConfigError."""
    from agent.config_build import build_config

    try:
        env = EnvSettings()  # pydantic-settings reads os.environ
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, env_prefix="AGENT_")) from None
    file = _read_file(config_path) if config_path else None
    names = ("AWS_REGION", "AWS_DEFAULT_REGION", "LOG_LEVEL", ECS_METADATA_VARIABLE)
    standard = {k: os.environ[k] for k in names if k in os.environ}
    return build_config(env, file, standard)


def _read_file(path: Path) -> ConfigFile:
    import yaml

    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"--config {path}: cannot read the file ({exc.strerror or exc})"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"--config {path}: not UTF-8 text (expected a YAML file)"]) from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise ConfigError([f"--config {path}: nested too deeply to be a configuration file"]) from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError([f"--config {path}: not valid YAML{at}"]) from None
    if not isinstance(raw, dict):
        raise ConfigError([f"--config {path}: expected a YAML mapping with database.connections"])
    try:
        return ConfigFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, env_prefix=None)) from None


def format_validation_error(exc: ValidationError, env_prefix: str | None) -> list[str]:
    """Turn pydantic errors into lines naming the variable (or YAML path) and what is expected."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        path = ".".join(str(p) for p in error["loc"])
        field = f"{env_prefix}{path.upper()}" if env_prefix is not None else path
        problems.append(f"{field}: {_expectation(error)}")
    return problems


def _expectation(error: Mapping[str, Any]) -> str:
    kind = str(error.get("type", ""))
    if kind.startswith("float") or kind.startswith("int"):
        return "expected a number (e.g. 5 or 2.5)"
    if kind.startswith("bool"):
        return "expected true or false"
    if kind == "missing":
        return "is required"
    return str(error.get("msg", "is invalid")).removeprefix("Value error, ")


def dsn_error(field: str, exc: DsnError) -> str:
    """A DSN problem, prefixed by the field that carried the DSN."""
    return f"{field}: {exc}"


__all__ = [
    "AgentConfig",
    "ConfigError",
    "Dsn",
    "EnvSettings",
    "ReadinessPolicy",
    "SslMode",
    "StatusDetail",
    "TargetConfig",
    "load_config",
    "parse_dsn",
    "parse_sslmode",
    "region_from_host",
]
