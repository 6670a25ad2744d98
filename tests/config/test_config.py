"""Configuration: environment and YAML into validated targets; every bad input named with its expected form."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.config.dsn import DsnError, Engine, SslMode, arn_region, parse_dsn, region_from_host
from agent.config.load import load_config
from agent.config.models import AgentConfig, ConfigError

PASSWORD = "Zq8-wrong-horse-battery"
RDS_HOST = "mydb.abc123xyz.eu-west-1.rds.amazonaws.com"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from an environment without AGENT_* or AWS region variables."""
    for key in list(os.environ):
        if key.startswith("AGENT_") or key in ("AWS_REGION", "AWS_DEFAULT_REGION", "LOG_LEVEL"):
            monkeypatch.delenv(key)


def load(monkeypatch: pytest.MonkeyPatch, path: Path | None = None, **env: str) -> AgentConfig:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return load_config(path)


def problems(monkeypatch: pytest.MonkeyPatch, path: Path | None = None, **env: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(monkeypatch, path, **env)
    return "\n".join(caught.value.problems)


def test_env_dsn_with_static_password_makes_default_target(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load(monkeypatch, AGENT_DB_DSN="postgresql://app@db.internal:6543/orders", AGENT_DB_PASSWORD=PASSWORD)
    (target,) = config.targets
    assert (target.name, target.engine, target.host, target.port) == (
        "default",
        Engine.POSTGRESQL,
        "db.internal",
        6543,
    )
    assert (target.database, target.user, target.sslmode) == ("orders", "app", SslMode.PREFER)
    assert target.password is not None and target.password.get_secret_value() == PASSWORD
    assert not config.uses_aws
    assert PASSWORD not in repr(config) and PASSWORD not in str(config.model_dump())


def test_defaults_match_the_documented_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load(monkeypatch, AGENT_DB_DSN="mysql://app@db:3306/x", AGENT_DB_PASSWORD=PASSWORD)
    assert (config.timeout_seconds, config.port, config.interval_seconds) == (5.0, 8099, 10.0)
    assert (config.failure_threshold, config.success_threshold, config.readiness_policy) == (3, 1, "gate")
    assert (config.secret_refresh_seconds, config.db_reauth_seconds) == (900.0, 300.0)
    assert config.rotation_stuck_seconds == 600.0


@pytest.mark.parametrize(
    ("dsn", "engine", "port"),
    [
        ("postgres://u@h/d", Engine.POSTGRESQL, 5432),
        ("postgresql+asyncpg://u@h/d", Engine.POSTGRESQL, 5432),
        ("mysql://u@h/d", Engine.MYSQL, 3306),
        ("mariadb://u@h:3307/d", Engine.MYSQL, 3307),
    ],
)
def test_schemes_and_default_ports(dsn: str, engine: Engine, port: int) -> None:
    parsed = parse_dsn(dsn)
    assert (parsed.engine, parsed.port) == (engine, port)


@pytest.mark.parametrize("placeholder", ["$TOKEN", "${DB_PASSWORD}", "<password>", "{{ token }}"])
def test_password_placeholder_is_ignored(placeholder: str) -> None:
    assert parse_dsn(f"postgresql://app:{placeholder}@h:5432/d").password is None


def test_literal_dsn_password_is_used_but_never_rendered() -> None:
    parsed = parse_dsn(f"postgresql://app:{PASSWORD}@h:5432/d?sslmode=require")
    assert parsed.password is not None and parsed.password.get_secret_value() == PASSWORD
    assert PASSWORD not in repr(parsed) and PASSWORD not in str(parsed)
    assert str(parsed) == "postgresql://app:[REDACTED]@h:5432/d?sslmode=require"


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        ("", "DSN is empty"),
        ("postgresql:mydb.rds.amazonaws.com", "missing '://'"),
        ("postgresql://user@/dbname", "no host"),
        ("oracle://u@h/d", "unsupported DSN scheme 'oracle'"),
        ("postgresql://u@h:99999/d", "port is not a number from 1 to 65535"),
        ("postgresql://u@h:abc/d", "port is not a number from 1 to 65535"),
        ("postgresql://u@h/d?sslmode=always", "sslmode 'always' is not one of disable, prefer, require"),
    ],
)
def test_bad_dsn_names_problem_and_expected_form(dsn: str, expected: str) -> None:
    with pytest.raises(DsnError) as caught:
        parse_dsn(dsn)
    assert expected in str(caught.value)


def test_bad_dsn_error_never_echoes_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    text = problems(monkeypatch, AGENT_DB_DSN=f"postgresql://app:{PASSWORD}@h:notaport/d")
    assert text.startswith("AGENT_DB_DSN: could not extract endpoint from DSN")
    assert "expected postgresql://user@host:5432/db" in text
    assert PASSWORD[:4] not in text


@pytest.mark.parametrize(
    ("layout", "part"),
    [
        ("postgresql://app:{head}/{tail}@db:5432/orders", "password"),  # '/' ends the host part: the tail is the db
        ("postgresql://app:{head}?{tail}@db/orders", "password"),  # '?': the tail becomes the query
        ("mysql://app:{head}#{tail}@db/orders", "password"),  # '#': the tail becomes the fragment
        ("mysql://app:{head}@{tail}/x@db/orders", "password"),  # '@' and '/': the head would be a host looked up
        ("postgresql://app:{head}[{tail}@db/orders", "password"),  # '[': the host part would read as an IPv6 one
        ("postgresql://app/:{head}{tail}@db", "user name"),  # '/' in the user: the whole password becomes the db
        ("postgresql://1234:{head}/{tail}@db", "password"),  # the host part parses as host 1234, the head as port
    ],
)
def test_unencoded_delimiter_in_user_or_password_is_refused_without_echo(layout: str, part: str) -> None:
    """An unencoded '/', '?', '#', '@' or '[' in the user or password would put password characters in the host,
    port or database: refused, naming the part and how to encode each character, repeating nothing of it."""
    head, tail = "4242", PASSWORD[:8]
    with pytest.raises(DsnError) as caught:
        parse_dsn(layout.format(head=head, tail=tail))
    message = str(caught.value)
    assert message.startswith(f"the DSN's {part} holds a character that must be percent-encoded in a URL")
    assert "'/' as %2F, '?' as %3F, '#' as %23, '@' as %40, '[' as %5B" in message
    assert head not in message and tail[:4] not in message


def test_percent_encoded_delimiters_in_a_password_are_accepted() -> None:
    parsed = parse_dsn("postgresql://app:a%2Fb%3Fc%23d%40e@db:5432/orders")
    assert (parsed.host, parsed.port, parsed.database) == ("db", 5432, "orders")
    assert parsed.password is not None and parsed.password.get_secret_value() == "a/b?c#d@e"


def test_region_is_read_from_rds_host() -> None:
    assert region_from_host(RDS_HOST) == "eu-west-1"
    assert region_from_host("db.internal") is None


def test_region_is_read_from_an_arn() -> None:
    """An ARN's fourth field; nothing for a plain name or an ARN of a global service."""
    assert arn_region("arn:aws:secretsmanager:eu-central-1:123456789012:secret:db-AbCdEf") == "eu-central-1"
    assert arn_region("orders/db") is None and arn_region(None) is None
    assert arn_region("arn:aws:iam::123456789012:role/app") is None


def test_missing_dsn_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "AGENT_DB_DSN: is required (expected postgresql://user@host:5432/db" in problems(monkeypatch)


def test_missing_username(monkeypatch: pytest.MonkeyPatch) -> None:
    text = problems(monkeypatch, AGENT_DB_DSN="postgresql://h:5432/d", AGENT_DB_PASSWORD=PASSWORD)
    assert "database username not found: put it in the DSN or set AGENT_DB_USER" in text


def test_username_may_come_from_agent_db_user_or_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load(monkeypatch, AGENT_DB_DSN="postgresql://h/d", AGENT_DB_PASSWORD="x" * 8, AGENT_DB_USER="svc")
    assert config.targets[0].user == "svc"
    monkeypatch.delenv("AGENT_DB_USER")
    monkeypatch.delenv("AGENT_DB_PASSWORD")
    config = load(monkeypatch, AGENT_DB_SECRET_ID="prod/db", AWS_REGION="us-east-1")
    assert config.targets[0].user is None and config.targets[0].secret_id == "prod/db"


def test_no_credential_source(monkeypatch: pytest.MonkeyPatch) -> None:
    text = problems(monkeypatch, AGENT_DB_DSN="postgresql://app:$TOKEN@h:5432/d")
    assert "no credential source for this database: set AGENT_DB_PASSWORD, AGENT_DB_SECRET_ID" in text


def test_iam_without_region_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    text = problems(monkeypatch, AGENT_DB_DSN="postgresql://app@db.internal/d", AGENT_DB_IAM_AUTH="true")
    assert "IAM auth is enabled but no AWS region could be resolved: set AGENT_AWS_REGION" in text


def test_iam_region_from_host_defaults_tls_to_require(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load(monkeypatch, AGENT_DB_DSN=f"postgresql://app@{RDS_HOST}:5432/d", AGENT_DB_IAM_AUTH="1")
    target = config.targets[0]
    assert (target.region, target.configured_region, target.sslmode) == ("eu-west-1", None, SslMode.REQUIRE)
    assert config.uses_aws and config.aws_region == "eu-west-1"


def test_configured_region_is_kept_for_the_mismatch_check(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load(
        monkeypatch,
        AGENT_DB_DSN=f"postgresql://app@{RDS_HOST}/d",
        AGENT_DB_IAM_AUTH="true",
        AWS_REGION="us-east-1",
    )
    assert config.targets[0].configured_region == "us-east-1"


def test_iam_with_sslmode_disable_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    text = problems(monkeypatch, AGENT_DB_DSN=f"mysql://app@{RDS_HOST}/d?sslmode=disable", AGENT_DB_IAM_AUTH="true")
    assert "IAM auth needs TLS, but the DSN says sslmode=disable" in text


def test_iam_and_password_together_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    text = problems(
        monkeypatch,
        AGENT_DB_DSN=f"mysql://app@{RDS_HOST}/d",
        AGENT_DB_IAM_AUTH="true",
        AGENT_DB_PASSWORD=PASSWORD,
    )
    assert "with IAM auth the token is the password" in text
    assert PASSWORD not in text


def test_secret_region_from_arn(monkeypatch: pytest.MonkeyPatch) -> None:
    arn = "arn:aws:secretsmanager:ap-south-1:123456789012:secret:prod/db-AbCdEf"
    config = load(monkeypatch, AGENT_DB_DSN="postgresql://app@db.internal/d", AGENT_DB_SECRET_ID=arn)
    assert config.targets[0].region == "ap-south-1"


def test_secret_without_region(monkeypatch: pytest.MonkeyPatch) -> None:
    text = problems(monkeypatch, AGENT_DB_DSN="postgresql://app@db.internal/d", AGENT_DB_SECRET_ID="prod/db")
    assert "AGENT_DB_SECRET_ID: Secrets Manager needs an AWS region" in text


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("AGENT_TIMEOUT_SECONDS", "soon", "AGENT_TIMEOUT_SECONDS: expected a number"),
        ("AGENT_TIMEOUT_SECONDS", "0", "AGENT_TIMEOUT_SECONDS: Input should be greater than 0"),
        (
            "AGENT_INTERVAL_SECONDS",
            "0.01",
            "AGENT_INTERVAL_SECONDS: Input should be greater than or equal to 0.1",
        ),
        ("AGENT_PORT", "70000", "AGENT_PORT: Input should be less than or equal to 65535"),
        ("AGENT_DB_IAM_AUTH", "maybe", "AGENT_DB_IAM_AUTH: expected true or false"),
        ("AGENT_READINESS_POLICY", "lenient", "AGENT_READINESS_POLICY: Input should be 'gate' or 'strict'"),
        ("AGENT_LOG_LEVEL", "loud", "AGENT_LOG_LEVEL: 'loud' is not one of debug, info, warning, error"),
        ("AGENT_ROTATION_STUCK_SECONDS", "never", "AGENT_ROTATION_STUCK_SECONDS: expected a number"),
        (
            "AGENT_ROTATION_STUCK_SECONDS",
            "0.5",
            "AGENT_ROTATION_STUCK_SECONDS: Input should be greater than or equal to 1",
        ),
    ],
)
def test_bad_scalar_names_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str) -> None:
    text = problems(monkeypatch, None, AGENT_DB_DSN="postgresql://a@h/d", AGENT_DB_PASSWORD=PASSWORD, **{name: value})
    assert expected in text


def test_floats_and_log_level_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load(
        monkeypatch,
        AGENT_DB_DSN="postgresql://a@h/d",
        AGENT_DB_PASSWORD=PASSWORD,
        AGENT_TIMEOUT_SECONDS="2.5",
        AGENT_INTERVAL_SECONDS="0.1",
        LOG_LEVEL="WARN",
    )
    assert (config.timeout_seconds, config.interval_seconds, config.log_level) == (2.5, 0.1, "warning")


def test_rotation_stuck_seconds_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """AGENT_ROTATION_STUCK_SECONDS: how long a rotation in progress may last before it reads as stuck."""
    config = load(
        monkeypatch, AGENT_DB_DSN="postgresql://a@h/d", AGENT_DB_PASSWORD=PASSWORD, AGENT_ROTATION_STUCK_SECONDS="2.5"
    )
    assert config.rotation_stuck_seconds == 2.5


GUIDE_YAML = f"""
logging:
  level: debug
database:
  pool_size: 10   # the application's own keys are ignored
  connections:
    writer:
      dsn: "postgresql://chimera_app:$TOKEN@{RDS_HOST}:5432/chimera_backend?sslmode=require"
      aws_iam_auth:
        enabled: true
        region: eu-west-1
    reader:
      dsn: "postgresql://{RDS_HOST.replace("mydb", "mydb-ro")}:5432/chimera_backend"
      aws_iam_auth:
        enabled: true
        db_user: chimera_reader
"""


def test_yaml_in_the_guides_shape_makes_one_target_per_connection(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(GUIDE_YAML)
    config = load(monkeypatch, path)
    assert [t.name for t in config.targets] == ["writer", "reader"]
    writer, reader = config.targets
    assert (writer.user, writer.iam_auth, writer.configured_region) == ("chimera_app", True, "eu-west-1")
    assert (reader.user, reader.region) == ("chimera_reader", "eu-west-1")
    assert config.log_level == "debug"
    assert writer.critical and reader.critical  # every database is critical unless it says otherwise


def test_yaml_critical_false_makes_an_optional_target(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`critical: false` marks a connection optional; a value that is not a boolean names the field."""
    path = tmp_path / "config.yaml"
    reporting = "    reporting:\n      dsn: postgresql://app:pw@replica/r\n      critical: {value}\n"
    path.write_text("database:\n  connections:\n" + reporting.format(value="false"))
    (target,) = load(monkeypatch, path).targets
    assert not target.critical
    path.write_text("database:\n  connections:\n" + reporting.format(value="sometimes"))
    with pytest.raises(ConfigError) as caught:
        load(monkeypatch, path)
    assert caught.value.problems == ["database.connections.reporting.critical: expected true or false"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("database: [1, 2", "not valid YAML at line"),
        ("- just a list", "expected a YAML mapping"),
        ("database:\n  connections: {}\n", "database.connections: needs at least one named connection"),
        ("database:\n  connections:\n    w: {}\n", "database.connections.w.dsn: is required"),
        (
            "database:\n  connections:\n    w:\n      dsn: postgresql://a@h/d\n      aws_iam_auth: {enable: true}\n",
            "database.connections.w.aws_iam_auth: unknown key 'enable' (did you mean enabled?): expected enabled,"
            " region, db_user",
        ),
        (
            "database:\n  connections:\n    w:\n      dsn: postgresql://h/d\n      aws_iam_auth: {enabled: true}\n",
            "database.connections.w.dsn: database username not found: put it in the DSN or set"
            " database.connections.w.aws_iam_auth.db_user",
        ),
    ],
)
def test_bad_yaml_names_the_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    assert expected in problems(monkeypatch, path, AWS_REGION="us-east-1")


def test_yaml_secret_without_region_names_the_yaml_field(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    connection = "    w:\n      dsn: postgresql://a@db.internal/d\n      secret_id: prod/db\n"
    path.write_text("database:\n  connections:\n" + connection)
    text = problems(monkeypatch, path)
    assert "database.connections.w.secret_id: Secrets Manager needs an AWS region" in text
    assert "AGENT_DB_SECRET_ID" not in text


def test_yaml_name_with_a_newline_is_quoted_in_every_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text('database:\n  connections:\n    "a\\nb":\n      dsn: postgresql://h/d\n      secret_id: x\n')
    text = problems(monkeypatch, path, AWS_REGION="us-east-1")
    assert "database.connections.'a\\nb'.dsn: connection name 'a\\nb' must be 1-64 of" in text
    assert "a\nb" not in text


def test_yaml_and_env_dsn_together_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(GUIDE_YAML)
    assert "set either AGENT_DB_DSN or database.connections" in problems(
        monkeypatch, path, AGENT_DB_DSN="postgresql://a@h/d"
    )


def test_missing_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert "cannot read the file" in problems(monkeypatch, tmp_path / "nope.yaml")


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_")}
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("command", ["check", "serve"])
def test_cli_exits_2_with_named_fields_and_no_traceback(command: str) -> None:
    """Invalid configuration: exit 2, every problem listed, no traceback, no secret."""
    proc = run_cli(
        command,
        env={"AGENT_DB_DSN": f"postgresql://app:{PASSWORD}@h:bad/d", "AGENT_TIMEOUT_SECONDS": "x"},
    )
    assert proc.returncode == 2
    assert "invalid configuration" in proc.stderr
    assert "AGENT_TIMEOUT_SECONDS: expected a number" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert PASSWORD[:4] not in proc.stderr + proc.stdout
