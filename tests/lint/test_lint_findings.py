"""Each kind of finding, on ecs/task-definition.json with one thing changed: the code, the container, the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.lint.support import AGENT, BACKEND, env_entry, example, lint_json, only_finding, write

SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/orders/db-AbCdEf"


def agent_field(rest: str) -> str:
    return f"containerDefinitions[{AGENT}].{rest}"


def add_env(task: dict[str, Any], index: int, name: str, value: str) -> None:
    task["containerDefinitions"][index]["environment"].append({"name": name, "value": value})


@pytest.mark.parametrize("name", ["DB_PASSWORD", "api_token", "JWT_SECRET", "STRIPE_SECRET_KEY"])
def test_a_literal_with_a_secrets_name_is_flagged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    task = example()
    add_env(task, BACKEND, name, "hunter2-literal")
    finding = only_finding(capsys, write(tmp_path, task))
    assert (finding["code"], finding["container"]) == ("secret-literal", "backend")
    assert finding["field"] == f"containerDefinitions[{BACKEND}].environment[{name}]"
    assert "hunter2-literal" not in finding["message"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DB_SECRET_ID", "prod/orders/db"),  # names where the secret is
        ("DB_PASSWORD_ARN", "prod/orders/db"),
        ("DB_SECRET_NAME", "prod/orders/db"),
        ("DB_PASSWORD_PARAMETER", "/prod/orders/db-password"),
        ("SESSION_TOKEN_SECONDS", "300"),
        ("DB_PASSWORD", ""),  # empty: nothing to leak
        ("OAUTH_TOKEN", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x-AbCdEf"),  # an ARN, not a value
    ],
)
def test_references_to_secrets_are_not_flagged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, value: str
) -> None:
    task = example()
    add_env(task, BACKEND, name, value)
    code, report = lint_json(capsys, write(tmp_path, task))
    assert (code, report["findings"]) == (0, [])


def test_the_agents_own_password_as_a_literal_is_flagged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """AGENT_DB_PASSWORD in the agent's environment instead of its secrets: the incident, in the sidecar."""
    task = example()
    task["containerDefinitions"][AGENT]["secrets"] = []
    add_env(task, AGENT, "AGENT_DB_PASSWORD", "hunter2-literal")
    finding = only_finding(capsys, write(tmp_path, task))
    assert (finding["code"], finding["field"]) == ("secret-literal", agent_field("environment[AGENT_DB_PASSWORD]"))


@pytest.mark.parametrize(
    "value",
    [
        "postgresql://app:hunter2-literal@orders.example:5432/orders",
        "host=orders.example user=app password=hunter2-literal",
    ],
)
def test_a_password_inside_a_value_is_flagged(tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str) -> None:
    """A DSN (or conninfo) with a password, under any name: the redactor's knowledge of secret shapes."""
    task = example()
    add_env(task, BACKEND, "DATABASE_URL", value)
    finding = only_finding(capsys, write(tmp_path, task))
    assert (finding["code"], finding["field"]) == (
        "secret-in-value",
        f"containerDefinitions[{BACKEND}].environment[DATABASE_URL]",
    )
    assert "hunter2-literal" not in finding["message"]


def test_the_agents_configuration_is_checked_by_its_own_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The message is the line `serve` prints (config/build.py): here, the agent would exit 2 at start."""
    task = example()
    env_entry(task, AGENT, "AGENT_DB_DSN")["value"] = "postgresql://app@orders.example:5432/orders?sslmode=bogus"
    finding = only_finding(capsys, write(tmp_path, task))
    assert (finding["code"], finding["field"]) == ("agent-config", agent_field("environment[AGENT_DB_DSN]"))
    assert finding["message"].startswith("`serve` would exit 2 (invalid configuration): AGENT_DB_DSN: ")
    assert "sslmode" in finding["message"]


def test_an_invalid_number_reads_as_serve_prints_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    task = example()
    add_env(task, AGENT, "AGENT_INTERVAL_SECONDS", "ten")
    finding = only_finding(capsys, write(tmp_path, task))
    assert finding["field"] == agent_field("environment[AGENT_INTERVAL_SECONDS]")
    assert finding["message"].endswith("AGENT_INTERVAL_SECONDS: expected a number (e.g. 5 or 2.5)")


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (["CMD-SHELL", "curl -f http://127.0.0.1:8099/health || exit 1"], "needs healthCheck.command"),
        (["CMD", "ecs-health-agent", "check"], "needs healthCheck.command"),
        (["CMD", "ecs-health-agent", "healthcheck", "--ready"], "with --ready a database outage"),
    ],
)
def test_the_agents_health_check_must_run_its_liveness_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], says: str
) -> None:
    task = example()
    task["containerDefinitions"][AGENT]["healthCheck"]["command"] = command
    finding = only_finding(capsys, write(tmp_path, task))
    assert (finding["code"], finding["field"]) == ("health-check", agent_field("healthCheck.command"))
    assert says in finding["message"]


@pytest.mark.parametrize(
    "command",
    [["CMD-SHELL", "ecs-health-agent healthcheck"], ["CMD", "/opt/venv/bin/python", "-m", "agent", "healthcheck"]],
)
def test_other_spellings_of_the_health_check_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    task = example()
    task["containerDefinitions"][AGENT]["healthCheck"]["command"] = command
    assert lint_json(capsys, write(tmp_path, task))[0] == 0


def test_a_missing_health_check_is_flagged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    task = example()
    del task["containerDefinitions"][AGENT]["healthCheck"]
    assert only_finding(capsys, write(tmp_path, task))["code"] == "health-check"


@pytest.mark.parametrize("depends_on", [None, [{"containerName": "health-agent", "condition": "START"}]])
def test_the_backend_must_wait_for_the_agent_healthy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], depends_on: list[dict[str, str]] | None
) -> None:
    task = example()
    backend = task["containerDefinitions"][BACKEND]
    backend.pop("dependsOn")
    if depends_on is not None:
        backend["dependsOn"] = depends_on
    finding = only_finding(capsys, write(tmp_path, task))
    assert (finding["code"], finding["container"]) == ("depends-on", "backend")
    assert finding["field"] == f"containerDefinitions[{BACKEND}].dependsOn"


def test_a_non_essential_helper_need_not_wait_for_the_agent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Only essential containers are backends; a FireLens router or a non-essential helper is not one."""
    task = example()
    task["containerDefinitions"].append({"name": "xray", "image": "amazon/aws-xray-daemon", "essential": False})
    task["containerDefinitions"].append(
        {"name": "log-router", "image": "fluent-bit", "firelensConfiguration": {"type": "fluentbit"}}
    )
    assert lint_json(capsys, write(tmp_path, task))[0] == 0


@pytest.mark.parametrize(("stop_timeout", "grace"), [(7, "5"), (30, "28"), (None, "28")])
def test_stop_timeout_must_outlast_the_drain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stop_timeout: int | None, grace: str
) -> None:
    """grace + 2 s HTTP shutdown + 0.5 s of log lines; no stopTimeout means ECS's 30 s."""
    task = example()
    agent = task["containerDefinitions"][AGENT]
    if stop_timeout is None:
        del agent["stopTimeout"]
    else:
        agent["stopTimeout"] = stop_timeout
    env_entry(task, AGENT, "AGENT_SHUTDOWN_GRACE_SECONDS")["value"] = grace
    finding = only_finding(capsys, write(tmp_path, task))
    assert (finding["code"], finding["field"]) == ("stop-timeout", agent_field("stopTimeout"))
    assert f"AGENT_SHUTDOWN_GRACE_SECONDS {grace} + 2 s" in finding["message"]


@pytest.mark.parametrize(
    ("name", "value"),
    [("AGENT_DB_SECRET_ID", None), ("AGENT_DB_IAM_AUTH", "true"), ("AGENT_DB_PASSWORD_PARAMETER", "/prod/orders/db")],
)
def test_aws_calls_need_a_task_role(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, value: str | None
) -> None:
    """Each way the agent calls AWS at run time needs taskRoleArn (the execution role only injects `secrets`)."""
    task = example()
    del task["taskRoleArn"]
    agent = task["containerDefinitions"][AGENT]
    if value is not None:  # only this way: no secret id, no injected password
        agent["environment"] = [e for e in agent["environment"] if e["name"] != "AGENT_DB_SECRET_ID"]
        agent["secrets"] = []
        add_env(task, AGENT, name, value)
    code, report = lint_json(capsys, write(tmp_path, task))
    roles = [f for f in report["findings"] if f["code"] == "task-role"]
    assert code == 1 and len(roles) == 1 and roles[0]["field"] == "taskRoleArn"
    assert name in roles[0]["message"]


def test_a_password_only_agent_needs_no_task_role(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    task = example()
    del task["taskRoleArn"]
    agent = task["containerDefinitions"][AGENT]
    agent["environment"] = [e for e in agent["environment"] if e["name"] != "AGENT_DB_SECRET_ID"]
    assert lint_json(capsys, write(tmp_path, task))[0] == 0


@pytest.mark.parametrize(
    ("value_from", "says"),
    [
        (f"{SECRET_ARN}:password", "all three of :json-key:version-stage:version-id"),
        ("arn:aws:s3:::bucket/key", "Secrets Manager or SSM only"),
        ("arn:aws:secretsmanager:eu-west-1:1234:secret:x", "a Region and a 12-digit account id"),
        ("arn:aws:ssm:eu-west-1:123456789012:document/x", "not a parameter's ARN"),
        ("arn:aws:secretsmanager:eu-west-1:123456789012:key/x", "not a secret's ARN"),
        ("prod orders password", "neither an ARN nor an SSM parameter name"),
        ("arn:aws", "not a well-formed ARN"),
    ],
)
def test_secrets_value_from_must_be_an_arn_ecs_resolves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value_from: str, says: str
) -> None:
    task = example()
    task["containerDefinitions"][BACKEND]["secrets"][0]["valueFrom"] = value_from
    finding = only_finding(capsys, write(tmp_path, task))
    assert (finding["code"], finding["field"]) == (
        "secret-arn",
        f"containerDefinitions[{BACKEND}].secrets[DB_PASSWORD].valueFrom",
    )
    assert says in finding["message"]


@pytest.mark.parametrize(
    "value_from",
    [
        f"{SECRET_ARN}",
        f"{SECRET_ARN}:password:AWSPREVIOUS:",
        "arn:aws:ssm:eu-west-1:123456789012:parameter/prod/orders/db-password",
        "/prod/orders/db-password",
        "orders-db-password",
    ],
)
def test_well_formed_value_froms_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str], value_from: str) -> None:
    task = example()
    task["containerDefinitions"][BACKEND]["secrets"][0]["valueFrom"] = value_from
    assert lint_json(capsys, write(tmp_path, task))[0] == 0


@pytest.mark.parametrize(
    "secret_id", ["prod/orders/other", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/orders/other-XyZ123"]
)
def test_the_secret_the_agent_rereads_must_be_the_one_injected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], secret_id: str
) -> None:
    task = example()
    env_entry(task, AGENT, "AGENT_DB_SECRET_ID")["value"] = secret_id
    finding = only_finding(capsys, write(tmp_path, task))
    assert (finding["code"], finding["field"]) == ("secret-mismatch", agent_field("environment[AGENT_DB_SECRET_ID]"))


@pytest.mark.parametrize(
    "secret_id",
    ["prod/orders/db", "prod/orders/db-AbCdEf", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/orders/db"],
)
def test_a_name_or_partial_arn_of_the_same_secret_agrees(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], secret_id: str
) -> None:
    task = example()
    env_entry(task, AGENT, "AGENT_DB_SECRET_ID")["value"] = secret_id
    assert lint_json(capsys, write(tmp_path, task))[0] == 0


@pytest.mark.parametrize(("parameter", "agrees"), [("/prod/orders/db-password", True), ("prod/orders/other", False)])
def test_the_parameter_the_agent_rereads_must_be_the_one_injected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], parameter: str, agrees: bool
) -> None:
    """AGENT_DB_PASSWORD_PARAMETER against an SSM valueFrom (ARN or name, with or without the leading '/')."""
    task = example()
    agent = task["containerDefinitions"][AGENT]
    agent["environment"] = [e for e in agent["environment"] if e["name"] != "AGENT_DB_SECRET_ID"]
    agent["secrets"][0]["valueFrom"] = "arn:aws:ssm:eu-west-1:123456789012:parameter/prod/orders/db-password"
    add_env(task, AGENT, "AGENT_DB_PASSWORD_PARAMETER", parameter)
    _code, report = lint_json(capsys, write(tmp_path, task))
    codes = [f["code"] for f in report["findings"] if f["code"] != "agent-config"]  # the variable may be new
    assert codes == ([] if agrees else ["secret-mismatch"])
