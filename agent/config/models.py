"""The frozen models every layer is handed: the agent's settings and one TargetConfig per database."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from agent.config.dsn import Engine, SslMode
from agent.config.echo import shown
from agent.config.hosts import address

LogLevel = Literal["debug", "info", "warning", "error"]
# CloudWatch's namespace rules: 1-255 of these characters, not starting with ':'; "AWS/" is reserved for AWS.
_NAMESPACE = re.compile(r"^[0-9A-Za-z._/#: -]{1,255}$")


# A problem is one line a person reads; values in it are cut where they are quoted (agent.config.echo), and this
# bound catches any that were not.
MAX_PROBLEM_CHARACTERS = 1000


class ConfigError(Exception):
    """Configuration that cannot work; each problem names its field and the expected form."""

    def __init__(self, problems: list[str]) -> None:
        problems = [_cut(problem) for problem in problems]
        super().__init__("; ".join(problems))
        self.problems = problems


def _cut(problem: str) -> str:
    if len(problem) <= MAX_PROBLEM_CHARACTERS:
        return problem
    return f"{problem[:MAX_PROBLEM_CHARACTERS]}... (cut from {len(problem)} characters)"


class ReadinessPolicy(StrEnum):
    """How probe failures map to /ready (see docs/readiness.md)."""

    GATE = "gate"
    STRICT = "strict"


class StatusDetail(StrEnum):
    """How much /status reveals: `summary` drops messages, hints and identity."""

    FULL = "full"
    SUMMARY = "summary"


class ExpectRole(StrEnum):
    """Which server a target must reach (AGENT_DB_EXPECT_ROLE): a writer, a reader, or either
    (docs/configuration.md, "Writer or reader")."""

    WRITER = "writer"  # not read-only: a primary, an Aurora writer
    READER = "reader"  # read-only: a hot standby, a read replica, an Aurora reader
    ANY = "any"


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
    password: SecretStr | None = None  # "" is a password (MariaDB's root has one), None is none
    password_from: str | None = None  # where `password` was set (AGENT_DB_PASSWORD, "the password in ...dsn")
    secret_id: str | None = None
    password_parameter: str | None = None  # SSM Parameter Store name or ARN (AGENT_DB_PASSWORD_PARAMETER)
    iam_auth: bool = False
    iam_host: str | None = None  # AGENT_DB_IAM_HOST: the RDS endpoint the token is signed for, if not `host`
    iam_port: int | None = None  # its port, if given and not `port`
    region: str | None = None  # where AWS calls for this target go
    configured_region: str | None = None  # what the user set explicitly, compared with the host's region
    dsn: str  # rendered without password, for messages
    critical: bool = True  # False (`critical: false` in --config): probed and shown, never a cause of 503
    expect_role: ExpectRole = ExpectRole.ANY  # checked on each fresh login (agent.probes.drivers.role)

    @property
    def uses_aws(self) -> bool:
        """Whether this target needs AWS credentials."""
        return self.iam_auth or self.secret_id is not None or self.password_parameter is not None

    @property
    def password_reference(self) -> str | None:
        """Where the agent reads the password from AWS, as messages name it: `secret ID`, `parameter NAME`."""
        if self.secret_id is not None:
            return f"secret {self.secret_id}"
        if self.password_parameter is not None:
            return f"parameter {self.password_parameter}"
        return None

    @property
    def address(self) -> str:
        """host:port, an IPv6 host in brackets."""
        return address(self.host, self.port)

    @property
    def token_host(self) -> str:
        """The host an IAM token is signed for: AGENT_DB_IAM_HOST, else the connection's host."""
        return self.iam_host or self.host

    @property
    def token_port(self) -> int:
        """The port an IAM token is signed for: AGENT_DB_IAM_HOST's, else the connection's port."""
        return self.iam_port or self.port


# The backend probe's target name in /status, the metrics and the logs (its probe name is `app`).
APP_TARGET = "backend"
StatusRange = tuple[int, int]  # inclusive: (200, 399)
AppScheme = Literal["http", "https", "tcp"]


class AppConfig(BaseModel):
    """The backend the agent fronts (AGENT_APP_URL): an HTTP(S) GET that expects certain statuses, or a TCP connect."""

    model_config = ConfigDict(frozen=True)

    scheme: AppScheme
    host: str
    port: int
    path: str  # "/health"; "" for tcp
    query: SecretStr | None = None  # sent with the request, never shown: it may carry a key
    expect_status: tuple[StatusRange, ...] = ((200, 399),)
    url: str  # as given, without the query string: for messages

    @property
    def address(self) -> str:
        """host:port, an IPv6 host in brackets."""
        return address(self.host, self.port)

    @property
    def request_url(self) -> str:
        """The URL to request, query included (never log it)."""
        query = self.query.get_secret_value() if self.query is not None else ""
        return f"{self.scheme}://{self.address}{self.path or '/'}" + (f"?{query}" if query else "")

    @property
    def expected(self) -> str:
        """The expected statuses as the user would write them: `200-399`, `200,204`."""
        return ",".join(str(low) if low == high else f"{low}-{high}" for low, high in self.expect_status)

    def expects(self, status: int) -> bool:
        """Whether an answer with this HTTP status passes."""
        return any(low <= status <= high for low, high in self.expect_status)


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
    # After a kept connection is lost, the re-login waits a delay drawn from [0, this): see agent.probes.pacing.
    db_relogin_spread_seconds: Annotated[float, Field(ge=0, le=3600)] = 30.0  # = pacing.DEFAULT_RELOGIN_SPREAD_SECONDS
    # How long a rotation in progress (AWSPENDING logs in, AWSCURRENT does not) may last before it reads as stuck.
    rotation_stuck_seconds: Annotated[float, Field(ge=1, le=86400)] = 600.0
    readiness_policy: ReadinessPolicy = ReadinessPolicy.GATE
    failure_threshold: int = Field(default=3, ge=1, le=100)
    success_threshold: int = Field(default=1, ge=1, le=100)
    shutdown_grace_seconds: Annotated[float, Field(ge=0, le=600)] = 5.0
    status_detail: StatusDetail = StatusDetail.FULL
    cloudwatch_emf: bool = False
    cloudwatch_namespace: str = "ECSHealthAgent"
    ecs_metadata_uri: str | None = None  # from ECS_CONTAINER_METADATA_URI_V4, not an AGENT_* variable
    app: AppConfig | None = None  # the backend probe (AGENT_APP_URL or `app` in --config); None: not probed

    @field_validator("cloudwatch_namespace")
    @classmethod
    def _cloudwatch_namespace(cls, value: str) -> str:
        if not _NAMESPACE.match(value) or value.startswith(":") or value.startswith("AWS/"):
            raise ValueError(
                f"{shown(value)} is not a CloudWatch namespace: expected 1-255 of A-Z a-z 0-9 . - _ / # : and space,"
                " not starting with ':' or 'AWS/' (e.g. ECSHealthAgent)"
            )
        return value

    @property
    def uses_aws(self) -> bool:
        """Whether any target needs AWS credentials."""
        return any(t.uses_aws for t in self.targets)
