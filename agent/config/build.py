"""Turns what the user gave (environment, YAML file) into validated targets; every problem is collected."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pydantic import SecretStr, ValidationError

from agent.config.backend import app_config
from agent.config.dsn import Dsn, DsnError, SslMode, arn_region, parse_dsn, region_from_host
from agent.config.echo import did_you_mean, shown
from agent.config.hosts import host_problem, normal_host
from agent.config.iam_host import parse_iam_host
from agent.config.inputs import ECS_METADATA_VARIABLE, ConfigFile, ConnectionFile, EnvSettings, format_validation_error
from agent.config.models import APP_TARGET, AgentConfig, ConfigError, ExpectRole, TargetConfig
from agent.config.parameter import parameter_problems

# Each target keeps a database connection (and its probes' sockets while they run) in this task, whose
# descriptors the HTTP server needs too; a task that talks to more databases than this is several services.
MAX_TARGETS = 100
_TARGET_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_LOG_LEVELS = {"debug": "debug", "info": "info", "warn": "warning", "warning": "warning", "error": "error"}
_SCALARS = (
    "timeout_seconds",
    "host",
    "port",
    "interval_seconds",
    "secret_refresh_seconds",
    "db_reauth_seconds",
    "db_relogin_spread_seconds",
    "rotation_stuck_seconds",
    "readiness_policy",
    "failure_threshold",
    "success_threshold",
    "shutdown_grace_seconds",
    "status_detail",
    "cloudwatch_emf",
    "cloudwatch_namespace",
)


@dataclass(frozen=True, slots=True)
class _Credentials:
    """The AGENT_DB_* credentials, which a --config connection takes only when it sets none of its own."""

    password: SecretStr | None
    secret_id: str | None
    iam_auth: bool
    password_parameter: str | None = None


@dataclass(frozen=True, slots=True)
class _Source:
    """One connection as the user described it, before validation; `field` names where it came from."""

    name: str
    field: str
    dsn_text: str
    iam_auth: bool
    user: str | None  # wins over the DSN's user
    region: str | None
    secret_id: str | None
    secret_field: str  # where the secret id was set, for the error message
    password: SecretStr | None  # wins over the DSN's password
    sslrootcert: str | None
    user_hint: str  # where a username can be set, for the error message
    critical: bool = True
    password_parameter: str | None = None  # an SSM parameter name or ARN
    parameter_field: str = "AGENT_DB_PASSWORD_PARAMETER"  # where it was set, for the error message
    password_from: str | None = None  # where `password` was set: AGENT_DB_PASSWORD, the password in ...
    fallback_user: str | None = None  # used when neither `user` nor the DSN names one
    shared: _Credentials | None = None  # the globals, for a connection without credentials of its own
    expect_role: str | None = None  # as given: writer, reader or any
    expect_role_field: str = "AGENT_DB_EXPECT_ROLE"  # where it was set, for the error message
    iam_host: str | None = None  # AGENT_DB_IAM_HOST / aws_iam_auth.host, as given
    iam_host_field: str = "AGENT_DB_IAM_HOST"


def build_config(env: EnvSettings, file: ConfigFile | None, standard: Mapping[str, str]) -> AgentConfig:
    """Validate everything and return the AgentConfig, or raise ConfigError listing every problem."""
    problems: list[str] = []
    targets = [t for s in _sources(env, file, problems) if (t := _target(s, standard, problems))]
    scalars = _scalars(env, file, standard, problems)
    app = app_config(env, file, problems)
    if app is not None and any(t.name == APP_TARGET for t in targets):
        # The target name says which probes belong together (optional targets, the status page's grouping).
        problems.append(
            f"database.connections.{APP_TARGET}: {APP_TARGET!r} is the backend probe's target name"
            " (AGENT_APP_URL): give this connection another name"
        )
    if problems:
        raise ConfigError(problems)
    try:
        return AgentConfig(targets=tuple(targets), aws_region=_aws_region(env, standard, targets), app=app, **scalars)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, env_prefix="AGENT_")) from None


def _sources(env: EnvSettings, file: ConfigFile | None, problems: list[str]) -> list[_Source]:
    connections = file.database.connections if file and file.database else {}
    if connections and env.db_iam_host is not None:
        problems.append(
            "AGENT_DB_IAM_HOST: applies to AGENT_DB_DSN; with database.connections in --config set"
            " aws_iam_auth.host on the connection it is for"
        )
    if connections and env.db_dsn is not None:
        problems.append("AGENT_DB_DSN: set either AGENT_DB_DSN or database.connections in --config, not both")
        return []
    if connections:
        if len(connections) > MAX_TARGETS:
            problems.append(
                f"database.connections: {len(connections)} connections, more than the {MAX_TARGETS} one agent"
                " probes: each keeps a database connection and file descriptors in this task (ECS gives a container"
                " 1,024 by default); split them across services, or keep the ones this task's backend uses"
            )
            return []
        return [_file_source(name, conn, env) for name, conn in connections.items()]
    if env.db_dsn is None:
        problems.append(
            "AGENT_DB_DSN: is required (expected postgresql://user@host:5432/db or mysql://user@host:3306/db),"
            " or give --config with database.connections"
        )
        return []
    return [
        _Source(
            name="default",
            field="AGENT_DB_DSN",
            dsn_text=env.db_dsn.get_secret_value(),
            iam_auth=bool(env.db_iam_auth),
            user=env.db_user,
            region=env.aws_region,
            secret_id=env.db_secret_id,
            secret_field="AGENT_DB_SECRET_ID",
            password=env.db_password,  # wins over the DSN's password, as AGENT_DB_USER wins over its user
            password_from="AGENT_DB_PASSWORD",
            password_parameter=env.db_password_parameter,
            sslrootcert=env.db_sslrootcert,
            user_hint="put it in the DSN or set AGENT_DB_USER",
            expect_role=env.db_expect_role,
            iam_host=env.db_iam_host,
        )
    ]


def _file_source(name: str, conn: ConnectionFile, env: EnvSettings) -> _Source:
    """A connection's own user and credentials (its DSN, `secret_id`, `aws_iam_auth`) win over the AGENT_DB_*
    globals; those apply to a connection that sets none of its own."""
    iam = conn.aws_iam_auth
    # A name that is not valid is quoted, so a newline or control character in it cannot split the message.
    shown_name = name if _TARGET_NAME.match(name) else shown(name)
    return _Source(
        name=name,
        field=f"database.connections.{shown_name}.dsn",
        dsn_text=conn.dsn,
        iam_auth=iam.enabled,
        user=iam.db_user,
        region=iam.region or env.aws_region,
        secret_id=conn.secret_id,
        secret_field=f"database.connections.{shown_name}.secret_id",
        password=None,
        sslrootcert=env.db_sslrootcert,
        user_hint=f"put it in the DSN or set database.connections.{shown_name}.aws_iam_auth.db_user / AGENT_DB_USER",
        critical=conn.critical,
        password_parameter=conn.password_parameter,
        parameter_field=f"database.connections.{shown_name}.password_parameter",
        fallback_user=env.db_user,
        shared=_Credentials(env.db_password, env.db_secret_id, bool(env.db_iam_auth), env.db_password_parameter),
        expect_role=conn.expect_role if conn.expect_role is not None else env.db_expect_role,
        expect_role_field=(
            f"database.connections.{shown_name}.expect_role" if conn.expect_role is not None else "AGENT_DB_EXPECT_ROLE"
        ),
        iam_host=iam.host,
        iam_host_field=f"database.connections.{shown_name}.aws_iam_auth.host",
    )


def _own_credentials(src: _Source, dsn: Dsn) -> _Source:
    """The source with the DSN's password when nothing overrides it, or the globals when it has no credentials."""
    if src.password is None and dsn.password is not None:
        return replace(src, password=dsn.password, password_from=f"the password in {src.field}")
    if src.password is not None or src.secret_id or src.password_parameter or src.iam_auth or src.shared is None:
        return src
    shared = src.shared
    return replace(
        src,
        password=shared.password,
        password_from="AGENT_DB_PASSWORD",
        secret_id=shared.secret_id,
        secret_field="AGENT_DB_SECRET_ID",
        password_parameter=shared.password_parameter,
        parameter_field="AGENT_DB_PASSWORD_PARAMETER",
        iam_auth=shared.iam_auth,
    )


def _target(src: _Source, standard: Mapping[str, str], problems: list[str]) -> TargetConfig | None:
    before = len(problems)
    if not _TARGET_NAME.match(src.name):
        problems.append(f"{src.field}: connection name {shown(src.name)} must be 1-64 of A-Z a-z 0-9 _ . -")
    try:
        dsn = parse_dsn(src.dsn_text)
    except DsnError as exc:
        problems.append(f"{src.field}: {exc}")
        return None
    src = _own_credentials(src, dsn)
    user = src.user or dsn.user or src.fallback_user
    password = src.password
    if not user and not src.secret_id:  # a parameter holds the password only: the user is the DSN's
        problems.append(f"{src.field}: database username not found: {src.user_hint}")
    _check_credential_source(src, password, problems)
    sslmode = _sslmode(src, dsn, problems)
    expect_role = _expect_role(src, problems)
    iam = parse_iam_host(src.iam_host, field=src.iam_host_field, iam_auth=src.iam_auth, problems=problems)
    configured = src.region or standard.get("AWS_REGION") or standard.get("AWS_DEFAULT_REGION")
    region = (
        configured
        or region_from_host(iam.host if iam else dsn.host)
        or arn_region(src.secret_id)
        or arn_region(src.password_parameter)
    )
    _check_region(src, region, problems)
    if len(problems) > before:
        return None
    return TargetConfig(
        name=src.name,
        engine=dsn.engine,
        host=dsn.host,
        port=dsn.port,
        database=dsn.database,
        user=user,
        sslmode=sslmode,
        sslrootcert=_rootcert(src, dsn),
        password=password,
        password_from=src.password_from if password is not None else None,
        secret_id=src.secret_id,
        password_parameter=src.password_parameter.strip() if src.password_parameter else None,
        iam_auth=src.iam_auth,
        iam_host=iam.host if iam else None,
        iam_port=iam.port if iam else None,
        region=region,
        configured_region=configured,
        dsn=dsn.render(),
        critical=src.critical,
        expect_role=expect_role,
    )


def _expect_role(src: _Source, problems: list[str]) -> ExpectRole:
    """writer, reader or any (any case, spaces around it ignored); unset means any."""
    if src.expect_role is None:
        return ExpectRole.ANY
    given = src.expect_role.strip().lower()
    known = [role.value for role in ExpectRole]
    if given in known:
        return ExpectRole(given)
    problems.append(
        f"{src.expect_role_field}: {shown(src.expect_role)} is not a role{did_you_mean(given, known)}: expected"
        " writer (the login must reach a server that accepts writes), reader (a read-only one) or any"
    )
    return ExpectRole.ANY


def _check_credential_source(src: _Source, password: SecretStr | None, problems: list[str]) -> None:
    if src.password_parameter is not None:
        secret_field = src.secret_field if src.secret_id else None
        problems.extend(parameter_problems(src.password_parameter, src.parameter_field, secret_field))
    fetched = src.secret_id or src.password_parameter
    if src.iam_auth and (password is not None or fetched):
        problems.append(
            f"{src.field}: IAM auth is enabled and a password source (AGENT_DB_PASSWORD, AGENT_DB_SECRET_ID,"
            " AGENT_DB_PASSWORD_PARAMETER or a password in the DSN) is also set: with IAM auth the token is the"
            " password; keep one of them"
        )
    elif not src.iam_auth and password is None and not fetched:
        problems.append(
            f"{src.field}: no credential source for this database: set AGENT_DB_PASSWORD, AGENT_DB_SECRET_ID,"
            " AGENT_DB_PASSWORD_PARAMETER, or AGENT_DB_IAM_AUTH=true (aws_iam_auth.enabled in --config)"
        )


def _sslmode(src: _Source, dsn: Dsn, problems: list[str]) -> SslMode:
    mode = dsn.sslmode or _default_sslmode(iam_auth=src.iam_auth, rootcert=_rootcert(src, dsn))
    if src.iam_auth and not mode.required:
        problems.append(
            f"{src.field}: IAM auth needs TLS, but the DSN says sslmode={mode}, under which the token (a password"
            " for 15 minutes) would go in cleartext to a server that refuses TLS: use sslmode=verify-full with"
            " AGENT_DB_SSLROOTCERT set to the RDS CA bundle (the image sets it), or at least sslmode=require"
        )
    return mode


def _default_sslmode(*, iam_auth: bool, rootcert: str | None) -> SslMode:
    """The sslmode when the DSN gives none: verify-full when a CA bundle is set (the image sets
    AGENT_DB_SSLROOTCERT to the RDS bundle), else require with IAM auth and prefer (libpq's default) without."""
    if rootcert:
        return SslMode.VERIFY_FULL
    return SslMode.REQUIRE if iam_auth else SslMode.PREFER


def _rootcert(src: _Source, dsn: Dsn) -> str | None:
    # The DSN's own sslrootcert= names this database's CA, so it wins over the process-wide AGENT_DB_SSLROOTCERT
    # (which the image sets); an empty AGENT_DB_SSLROOTCERT means none.
    return dsn.sslrootcert or src.sslrootcert or None


def _check_region(src: _Source, region: str | None, problems: list[str]) -> None:
    if region:
        return
    if src.iam_auth:
        problems.append(
            f"{src.field}: IAM auth is enabled but no AWS region could be resolved: set AGENT_AWS_REGION"
            " (or AWS_REGION, or aws_iam_auth.region), or use an RDS endpoint such as"
            " mydb.xxxx.us-east-1.rds.amazonaws.com"
        )
    elif src.secret_id:
        problems.append(
            f"{src.secret_field}: Secrets Manager needs an AWS region: set AGENT_AWS_REGION (or AWS_REGION),"
            " or give the secret's full ARN"
        )
    elif src.password_parameter:
        problems.append(
            f"{src.parameter_field}: Parameter Store needs an AWS region: set AGENT_AWS_REGION (or AWS_REGION),"
            " or give the parameter's ARN (arn:aws:ssm:REGION:ACCOUNT:parameter/NAME)"
        )


def _aws_region(env: EnvSettings, standard: Mapping[str, str], targets: list[TargetConfig]) -> str | None:
    explicit = env.aws_region or standard.get("AWS_REGION") or standard.get("AWS_DEFAULT_REGION")
    return explicit or next((t.region for t in targets if t.region), None)


def _scalars(
    env: EnvSettings, file: ConfigFile | None, standard: Mapping[str, str], problems: list[str]
) -> dict[str, Any]:
    values: dict[str, Any] = {k: v for k in _SCALARS if (v := getattr(env, k)) is not None}
    for key in ("readiness_policy", "status_detail"):
        if key in values:
            values[key] = str(values[key]).strip().lower()
    values["ecs_metadata_uri"] = standard.get(ECS_METADATA_VARIABLE, "").strip() or None
    if "host" in values:
        host = str(values.pop("host")).strip()
        problem = host_problem(host)
        if problem:
            problems.append(f"AGENT_HOST: {problem} (where the agent listens, e.g. 0.0.0.0, :: or 127.0.0.1)")
        else:
            values["host"] = normal_host(host)
    level = env.log_level or (file.logging.level if file else None) or standard.get("LOG_LEVEL")
    if level:
        normalised = _LOG_LEVELS.get(level.strip().lower())
        if normalised is None:
            problems.append(f"AGENT_LOG_LEVEL: {shown(level)} is not one of debug, info, warning, error")
        else:
            values["log_level"] = normalised
    return values
