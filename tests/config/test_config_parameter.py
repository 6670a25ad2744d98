"""AGENT_DB_PASSWORD_PARAMETER / `password_parameter`: SSM names and ARNs checked before any call, one AWS password
source per database, and the region taken from the ARN."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent.config.parameter import parameter_name, parameter_problem, split_selector
from tests.config.test_config import clean_env, load, problems
from tests.support.agent_process import run_agent

__all__ = ["clean_env"]  # the autouse fixture: no AGENT_* or region from the outside
DSN = "postgresql://app@db.internal/orders"
ARN = "arn:aws:ssm:ap-south-1:123456789012:parameter/app/db/password"


@pytest.mark.parametrize(
    "value",
    [
        "/app/db/password",
        "app-db-password",
        "/app/db/password:3",
        "/app/db/password:prod_1",
        ARN,
        f"{ARN}:2",
        "arn:aws-cn:ssm:cn-north-1:123456789012:parameter/plain",
        "/aws/reference/secretsmanager/prod/db",  # a Secrets Manager secret read through Parameter Store
        "/" + "/".join("abcdefghijklmno"),  # 15 levels
    ],
)
def test_names_and_arns_getparameter_takes_are_accepted(value: str) -> None:
    assert parameter_problem(value) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", "is empty"),
        ("app db password", "may hold only a-z A-Z 0-9 _ . - and / (no spaces)"),
        ("app/db/password", "a hierarchy starts with /"),
        ("/app//password", "no empty level"),
        ("ssm:/app/db/password", "leave out the 'ssm' prefix"),
        ("awsDbPassword", "reserved by AWS"),
        ("/aws/app/password", "reserved by AWS"),
        ("SSM-password", "reserved by AWS"),
        ("/app/db:0", "versions start at 1"),
        ("/app/db:3rd", "takes a version (a number) or a label"),
        ("/app/db:awslabel", "takes a version (a number) or a label"),
        ("/app/db:a:b", "takes a version (a number) or a label"),
        ("/" + "/".join("abcdefghijklmnop"), "has 16 levels; Parameter Store allows at most 15"),
        ("/" + "a" * 1011, "has 1012 characters; Parameter Store allows at most 1011"),
        ("arn:aws:ssm:eu-west-1:1234:parameter/x", "is not a parameter ARN"),
        ("arn:aws:secretsmanager:eu-west-1:123456789012:secret:db", "is not a parameter ARN"),
    ],
)
def test_bad_names_say_what_is_wrong(value: str, expected: str) -> None:
    assert expected in (parameter_problem(value) or "")


def test_the_name_and_selector_of_an_arn() -> None:
    assert parameter_name(f"{ARN}:2") == "/app/db/password"
    assert split_selector(f"{ARN}:2") == (ARN, "2")
    assert parameter_name("plain:prod") == "plain" and split_selector("/a/b") == ("/a/b", "")


def test_parameter_is_a_password_source_with_the_arns_region(monkeypatch: pytest.MonkeyPatch) -> None:
    (target,) = load(monkeypatch, AGENT_DB_DSN=DSN, AGENT_DB_PASSWORD_PARAMETER=ARN).targets
    assert (target.password_parameter, target.region, target.uses_aws) == (ARN, "ap-south-1", True)
    assert target.password_reference == f"parameter {ARN}"


def test_errors_name_the_variable_and_the_expected_form(monkeypatch: pytest.MonkeyPatch) -> None:
    text = problems(monkeypatch, AGENT_DB_DSN=DSN, AGENT_DB_PASSWORD_PARAMETER="db password", AWS_REGION="eu-west-1")
    assert text.startswith("AGENT_DB_PASSWORD_PARAMETER: 'db password': a parameter name may hold only")
    assert "arn:aws:ssm:eu-west-1:123456789012:parameter/app/db/password" in text  # the expected form


def test_a_parameter_without_a_region_asks_for_one(monkeypatch: pytest.MonkeyPatch) -> None:
    text = problems(monkeypatch, AGENT_DB_DSN=DSN, AGENT_DB_PASSWORD_PARAMETER="/app/db/password")
    assert "AGENT_DB_PASSWORD_PARAMETER: Parameter Store needs an AWS region" in text


def test_secret_and_parameter_together_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """One AWS password source per database: which of two the task's password should match would be a guess."""
    text = problems(
        monkeypatch,
        AGENT_DB_DSN=DSN,
        AGENT_DB_PASSWORD_PARAMETER="/app/db/password",
        AGENT_DB_SECRET_ID="prod/db",
        AWS_REGION="eu-west-1",
    )
    assert "AGENT_DB_PASSWORD_PARAMETER: AGENT_DB_SECRET_ID is set too" in text


def test_iam_auth_and_a_parameter_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    text = problems(
        monkeypatch,
        AGENT_DB_DSN=DSN,
        AGENT_DB_PASSWORD_PARAMETER="/app/db/password",
        AGENT_DB_IAM_AUTH="true",
        AWS_REGION="eu-west-1",
    )
    assert "AGENT_DB_PASSWORD_PARAMETER" in text and "with IAM auth the token is the password" in text


def test_a_parameter_needs_a_user_from_the_dsn(monkeypatch: pytest.MonkeyPatch) -> None:
    """The parameter holds the password only (what ECS injects), so the user must be set elsewhere."""
    text = problems(
        monkeypatch,
        AGENT_DB_DSN="postgresql://db.internal/d",
        AGENT_DB_PASSWORD_PARAMETER="/app/db/password",
        AWS_REGION="eu-west-1",
    )
    assert "database username not found" in text


def test_a_static_password_and_a_parameter_go_together(monkeypatch: pytest.MonkeyPatch) -> None:
    """AGENT_DB_PASSWORD logs in; the parameter is the reference it is compared with (drift)."""
    config = load(
        monkeypatch,
        AGENT_DB_DSN=DSN,
        AGENT_DB_PASSWORD_PARAMETER="/app/db/password",
        AGENT_DB_PASSWORD="from-the-task-definition",
        AWS_REGION="eu-west-1",
    )
    (target,) = config.targets
    assert target.password is not None and target.password_parameter == "/app/db/password"


def test_yaml_password_parameter_names_its_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    connection = f"    w:\n      dsn: {DSN}\n      password_parameter: 'ssm/db'\n      secret_id: prod/db\n"
    path.write_text("database:\n  connections:\n" + connection)
    text = problems(monkeypatch, path, AWS_REGION="eu-west-1")
    assert "database.connections.w.password_parameter: 'ssm/db': a hierarchy starts with /" in text
    assert "database.connections.w.password_parameter: database.connections.w.secret_id is set too" in text


def test_yaml_connection_takes_the_global_parameter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(f"database:\n  connections:\n    w:\n      dsn: {DSN}\n")
    config = load(monkeypatch, path, AGENT_DB_PASSWORD_PARAMETER=ARN)
    assert config.targets[0].password_parameter == ARN


async def test_check_exits_2_naming_the_variable() -> None:
    env = {"AGENT_DB_DSN": DSN, "AGENT_DB_PASSWORD_PARAMETER": "/app/db/password:0", "AWS_REGION": "eu-west-1"}
    proc = await asyncio.to_thread(run_agent, "check", env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "AGENT_DB_PASSWORD_PARAMETER: '/app/db/password:0': parameter versions start at 1" in proc.stderr
