"""ecs/cloudformation.yaml as the stacks people deploy from it: password-only, IAM auth, ECS Exec on; each consistent
with the task definition and the policy files, and each one `lint` passes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from agent.cli import main
from agent.config.dsn import parse_dsn
from tests.support.cfn import (
    KMS_KEY_ARN,
    PARAMETER_STACK,
    SECRET_ARN,
    condition_values,
    evaluate,
    parameters,
    raw_template,
    stack,
)

REPO = Path(__file__).resolve().parents[1]
ECS = REPO / "ecs"
AGENT = "health-agent"
PASSWORD_ONLY = {"DbSecretArn": SECRET_ARN}
IAM_AUTH = {"DbiResourceId": "db-ABCDEFGHIJKLMNOPQRSTUVWXY1"}
LOGIN_PARAMETERS = {
    "DbSecretArn",
    "DbSecretKmsKeyArn",
    "DbiResourceId",
    "DbPasswordParameterArn",
    "DbPasswordParameterKmsKeyArn",
}
PARAMETER_ONLY = {"DbPasswordParameterArn": PARAMETER_STACK["DbPasswordParameterArn"]}
EXEC_PATHS = {"/managed-agents", "/var/lib/amazon/ssm", "/var/log/amazon/ssm"}  # where ECS Exec's SSM agent writes
SSMMESSAGES = {
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
}


def granted(resources: dict[str, Any], role: str) -> set[str]:
    statements = [s for p in resources[role]["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]
    return {a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}


def container(resources: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [c for c in resources["TaskDefinition"]["Properties"]["ContainerDefinitions"] if c["Name"] == name]
    return dict(found)


def lint_stack(tmp_path: Path, resources: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    path = tmp_path / "stack.json"
    path.write_text(json.dumps({"Resources": resources}))
    code = main(["lint", "--json", str(path)])
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert code == 0, report
    return report


def test_a_password_only_stack_needs_no_iam_or_kms_parameter_and_grants_no_rds_connect(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The secret's ARN is the only login parameter; no rds-db:connect, no kms:Decrypt (aws/secretsmanager key)."""
    required = {n for n, spec in raw_template()["Parameters"].items() if "Default" not in spec}
    assert not required & LOGIN_PARAMETERS, "login parameters must be optional"
    resources = stack(PASSWORD_ONLY)["Resources"]
    assert granted(resources, "TaskRole") == {"secretsmanager:GetSecretValue"}
    assert granted(resources, "ExecutionRole") & {"kms:Decrypt", "rds-db:connect"} == set()
    agent = container(resources, AGENT)
    names = {e["Name"] for e in agent["Environment"]}
    assert "AGENT_DB_SECRET_ID" in names and "AGENT_DB_IAM_AUTH" not in names
    assert [s["Name"] for s in agent["Secrets"]] == ["AGENT_DB_PASSWORD"]
    lint_stack(tmp_path, resources, capsys)


def test_a_customer_managed_key_adds_kms_decrypt_through_secrets_manager_only() -> None:
    resources = stack({**PASSWORD_ONLY, "DbSecretKmsKeyArn": KMS_KEY_ARN})["Resources"]
    for role in ("TaskRole", "ExecutionRole"):
        assert "kms:Decrypt" in granted(resources, role), role
    assert "kms:Decrypt" not in granted(stack({"DbSecretKmsKeyArn": KMS_KEY_ARN, **IAM_AUTH})["Resources"], "TaskRole")


def test_an_iam_auth_stack_grants_rds_connect_and_injects_no_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    resources = stack(IAM_AUTH)["Resources"]
    assert granted(resources, "TaskRole") == {"rds-db:connect"}
    assert "secretsmanager:GetSecretValue" not in granted(resources, "ExecutionRole")
    for name in ("backend", AGENT):
        assert "Secrets" not in container(resources, name), name
    environment = {e["Name"]: e["Value"] for e in container(resources, AGENT)["Environment"]}
    assert environment["AGENT_DB_IAM_AUTH"] == "true" and "AGENT_DB_SECRET_ID" not in environment
    lint_stack(tmp_path, resources, capsys)


def test_a_parameter_stack_injects_the_parameter_and_the_agent_reads_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The password in Parameter Store: both containers get it from the parameter (the execution role's
    ssm:GetParameters), the agent reads it too (AGENT_DB_PASSWORD_PARAMETER, the task role's ssm:GetParameter, for
    drift), a customer key is decrypted through SSM only; no Secrets Manager, no rds-db:connect."""
    resources = stack(PARAMETER_STACK)["Resources"]
    assert granted(resources, "TaskRole") == {"ssm:GetParameter", "kms:Decrypt"}
    assert granted(resources, "ExecutionRole") >= {"ssm:GetParameters", "kms:Decrypt"}
    assert "secretsmanager:GetSecretValue" not in granted(resources, "ExecutionRole")
    arn = {"Ref": "DbPasswordParameterArn"}
    for name in ("backend", AGENT):
        assert [s["ValueFrom"] for s in container(resources, name)["Secrets"]] == [arn], name
    environment = {e["Name"]: e["Value"] for e in container(resources, AGENT)["Environment"]}
    assert environment["AGENT_DB_PASSWORD_PARAMETER"] == arn and "AGENT_DB_SECRET_ID" not in environment
    lint_stack(tmp_path, resources, capsys)


@pytest.mark.parametrize(
    ("given", "accepted"),
    [
        ({}, False),
        (PASSWORD_ONLY, True),
        (PARAMETER_ONLY, True),
        (IAM_AUTH, True),
        ({**PASSWORD_ONLY, **IAM_AUTH}, False),
        ({**PARAMETER_ONLY, **IAM_AUTH}, False),
        ({**PASSWORD_ONLY, **PARAMETER_ONLY}, False),
    ],
)
def test_the_stack_rules_accept_exactly_one_way_to_log_in(given: dict[str, str], accepted: bool) -> None:
    """The agent exits 2 with neither, and with both (a password source next to IAM auth): CloudFormation refuses
    those parameter sets before creating anything."""
    values = parameters(given)
    assertions = [a["Assert"] for rule in raw_template()["Rules"].values() for a in rule["Assertions"]]
    assert all(evaluate(a, values, {}) for a in assertions) is accepted


def test_ecs_exec_is_consistent_across_task_definition_template_and_policy() -> None:
    """Off by default; on, the service enables it and the task role gets exactly ecs/task-role-policy-ecs-exec.json.
    The agent's root stays read-only, with a writable task volume at each path ECS Exec's SSM agent writes to,
    the same in the JSON task definition and the template."""
    spec = raw_template()["Parameters"]["EnableExecuteCommand"]
    assert spec["Default"] == "false" and not condition_values({})["ExecuteCommandEnabled"]
    off, on = stack(PASSWORD_ONLY)["Resources"], stack({**PASSWORD_ONLY, "EnableExecuteCommand": "true"})["Resources"]
    assert (
        off["Service"]["Properties"]["EnableExecuteCommand"],
        on["Service"]["Properties"]["EnableExecuteCommand"],
    ) == (
        False,
        True,
    )
    exec_policy = json.loads((ECS / "task-role-policy-ecs-exec.json").read_text())
    exec_actions = {a for s in exec_policy["Statement"] for a in s["Action"]}
    assert exec_actions == SSMMESSAGES and not granted(off, "TaskRole") & SSMMESSAGES
    assert granted(on, "TaskRole") - granted(off, "TaskRole") == SSMMESSAGES
    task = json.loads((ECS / "task-definition.json").read_text())
    (agent,) = [c for c in task["containerDefinitions"] if c["name"] == AGENT]
    assert agent["readonlyRootFilesystem"] is True
    mounts = {m["containerPath"]: m for m in agent["mountPoints"]}
    assert set(mounts) == EXEC_PATHS and not any(m["readOnly"] for m in mounts.values())
    volumes = {v["name"]: v for v in task["volumes"]}
    assert {m["sourceVolume"] for m in mounts.values()} <= set(volumes)
    assert not any("host" in v or "efsVolumeConfiguration" in v for v in volumes.values()), "task storage only"
    in_template = container(on, AGENT)
    assert in_template["ReadonlyRootFilesystem"] is True
    assert {m["ContainerPath"] for m in in_template["MountPoints"]} == EXEC_PATHS
    assert {v["Name"] for v in on["TaskDefinition"]["Properties"]["Volumes"]} == set(volumes)


def test_alarms_return_to_ok_when_the_service_scales_to_zero() -> None:
    """No tasks, no EMF lines: missing data must not hold an alarm in ALARM."""
    alarms = [r["Properties"] for r in raw_template()["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert alarms and {a["TreatMissingData"] for a in alarms} == {"notBreaching"}


def test_memory_reservation_is_the_measured_rss_plus_headroom() -> None:
    """bench/RESULTS.md's footprint with every feature on, plus at least 20 %; below the hard limit."""
    results = (REPO / "bench" / "RESULTS.md").read_text()
    found = re.search(r"\*\*Footprint\*\* RSS after 60 s[^|]*every feature on \| ([\d.]+) MiB", results)
    assert found, "bench/RESULTS.md no longer has the footprint row this test reads"
    measured = float(found.group(1))
    task = json.loads((ECS / "task-definition.json").read_text())
    (agent,) = [c for c in task["containerDefinitions"] if c["name"] == AGENT]
    assert measured * 1.2 <= agent["memoryReservation"] <= measured * 1.6, (measured, agent["memoryReservation"])
    assert agent["memoryReservation"] < agent["memory"]
    assert container(stack(PASSWORD_ONLY)["Resources"], AGENT)["MemoryReservation"] == agent["memoryReservation"]


@pytest.mark.parametrize("engine", raw_template()["Parameters"]["DbEngine"]["AllowedValues"])
def test_each_engine_the_stack_offers_makes_a_dsn_the_agent_reads_as_that_engine(engine: str) -> None:
    """DbEngine is the DSN's scheme (the incident's database was MySQL): each allowed value, substituted as
    CloudFormation would, parses as that engine with the port the parameter describes."""
    (dsn,) = [
        e["Value"]["Fn::Sub"]
        for e in container(stack(PASSWORD_ONLY)["Resources"], AGENT)["Environment"]
        if e["Name"] == "AGENT_DB_DSN"
    ]
    port = {"postgresql": "5432", "mysql": "3306"}[engine]
    values = {"DbEngine": engine, "DbUser": "app", "DbHost": "orders.c9akciq32.eu-west-1.rds.amazonaws.com"}
    text = re.sub(r"\$\{(\w+)\}", lambda m: {**values, "DbPort": port, "DbName": "orders"}[m.group(1)], dsn)
    parsed = parse_dsn(text)
    assert (parsed.engine.value, parsed.port) == (engine, int(port))
