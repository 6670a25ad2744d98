"""The environment variables each command reads, with their defaults: the text of `COMMAND --help`.

Names come from the models (EnvSettings: every AGENT_* variable) and defaults from AgentConfig's fields, so the help
cannot drift from what is read; tests/config/test_reference.py fails when a variable has no line here. The models
are imported only when the text is built (when help is asked for): `healthcheck` must not load pydantic.
"""

from __future__ import annotations

from collections.abc import Mapping

from agent.config.environ import DEFAULT_PORT

# Every EnvSettings field: (what it is, its default when AgentConfig has no field of that name). `check` reads the
# ones in CHECK; `serve` reads them all.
AGENT_VARIABLES: Mapping[str, tuple[str, str]] = {
    "db_dsn": ("the database: postgresql://user@host:5432/db?sslmode=require or mysql://...", "required, or --config"),
    "db_password": ("a static database password", "unset"),
    "db_secret_id": ("Secrets Manager secret id or ARN holding the password (RDS JSON or plain)", "unset"),
    "db_password_parameter": ("SSM Parameter Store name or ARN holding the password (SecureString)", "unset"),
    "db_iam_auth": ("log in with an RDS IAM auth token", "false"),
    "db_iam_host": ("RDS endpoint[:port] the IAM token is signed for (a tunnel, IP or CNAME in the DSN)", "the DSN's"),
    "db_user": ("database user, over the DSN's", "the DSN's user"),
    "db_sslrootcert": ("CA bundle for verify-ca / verify-full", "system CAs"),
    "db_expect_role": ("writer, reader or any: the server a fresh login must reach (read-only or not)", "any"),
    "aws_region": ("region for STS, Secrets Manager and the IAM token", "AWS_REGION, AWS_DEFAULT_REGION, the host's"),
    "timeout_seconds": ("budget of one probe run", ""),
    "log_level": ("debug, info, warning or error", "LOG_LEVEL, then info"),
    "host": ("address the HTTP endpoints listen on", ""),
    "port": ("port of /health /ready /status /metrics", ""),
    "interval_seconds": ("how often each probe runs", ""),
    "secret_refresh_seconds": ("how long a fetched secret or parameter is reused", ""),
    "db_reauth_seconds": ("a fresh login (and STS verification) this often", ""),
    "db_relogin_spread_seconds": ("longest random wait before a re-login after a lost connection", ""),
    "rotation_stuck_seconds": ("how long a rotation in progress may last before it reads as stuck", ""),
    "readiness_policy": ("gate or strict", ""),
    "failure_threshold": ("failures in a row before a probe counts as failing", ""),
    "success_threshold": ("passes in a row that clear a failing probe", ""),
    "shutdown_grace_seconds": ("after SIGTERM, /ready says draining this long", ""),
    "status_detail": ("full, or summary (no messages, hints or identity in /status)", ""),
    "cloudwatch_emf": ("also write CloudWatch EMF metric lines on stdout", ""),
    "cloudwatch_namespace": ("their CloudWatch namespace", ""),
    "app_url": ("the backend to probe: http(s)://... or tcp://host:port", "off"),
    "app_expect_status": ("HTTP statuses that pass: 200-399, 200,204", "200-399"),
}
CHECK = (
    "db_dsn",
    "db_password",
    "db_secret_id",
    "db_password_parameter",
    "db_iam_auth",
    "db_iam_host",
    "db_user",
    "db_sslrootcert",
    "db_expect_role",
    "aws_region",
    "timeout_seconds",
    "log_level",
    "app_url",
    "app_expect_status",
)
# The standard variables agent.config.load reads (STANDARD_VARIABLES there): what each is for.
STANDARD: Mapping[str, str] = {
    "AWS_REGION": "the region, when AGENT_AWS_REGION is unset",
    "AWS_DEFAULT_REGION": "the region, when AWS_REGION is unset too",
    "LOG_LEVEL": "the log level, when AGENT_LOG_LEVEL is unset",
    "ECS_CONTAINER_METADATA_URI_V4": "set by ECS: cluster, service and family for the metrics",
}
# Read by botocore itself (the AWS SDK's own variables), listed for `serve` and `check`.
AWS_VARIABLES: Mapping[str, str] = {
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "ECS sets it for a task with a task role",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI": "the credentials endpoint elsewhere (EKS Pod Identity, ECS Anywhere)",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE)": "the token that endpoint expects",
    "AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN": "EKS web identity (IRSA)",
    "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN": "static keys",
    "AWS_PROFILE, AWS_CONFIG_FILE": "a profile (local use)",
    "AWS_ENDPOINT_URL(_<SERVICE>), AWS_STS_REGIONAL_ENDPOINTS": "where the AWS calls go",
    "HTTP_PROXY, HTTPS_PROXY, NO_PROXY": "proxies for the AWS API calls",
}


def environment_help(command: str) -> str:
    """The `environment variables:` section of `command --help` (serve, check, healthcheck, sandbox)."""
    if command == "healthcheck":
        lines = _line("AGENT_PORT", "the agent's port (--port wins)", str(DEFAULT_PORT))
    elif command == "sandbox":
        lines = _line("AGENT_DB_DSN", "an admin DSN of a PostgreSQL that checks passwords (--postgres wins)", "unset")
    else:
        from agent.config.load import STANDARD_VARIABLES

        lines = [*_agent_lines(command), "", "also read:"]
        for name in STANDARD_VARIABLES:
            lines += _line(name, STANDARD[name])
        lines += ["", "read by botocore itself (the AWS SDK's variables):"]
        for names, what in AWS_VARIABLES.items():
            lines += _line(names, what)
    return "\n".join(["environment variables [default]:", *lines])


def _agent_lines(command: str) -> list[str]:
    from agent.config.inputs import EnvSettings
    from agent.config.models import AgentConfig

    names = CHECK if command == "check" else tuple(EnvSettings.model_fields)
    lines = []
    for name in names:
        what, default = AGENT_VARIABLES[name]
        field = AgentConfig.model_fields.get(name)
        if field is not None and not default:
            default = _shown(field.default)
        lines += _line(f"AGENT_{name.upper()}", what, default)
    if command == "check":
        lines.append("  (the other AGENT_* variables of `serve --help` are validated too)")
    return lines


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(getattr(value, "value", value))


def _line(name: str, what: str, default: str | None = None) -> list[str]:
    return [f"  {name}" + (f" [{default}]" if default is not None else ""), f"      {what}"]
