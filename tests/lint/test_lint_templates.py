"""CloudFormation templates (YAML with short-form intrinsics, and JSON), and which container is the agent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.config.load import config_from_environment
from agent.config.models import ConfigError
from tests.lint.support import ECS, lint_json, only_finding, write

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  DbPassword: {Type: String, NoEcho: true}
Resources:
  Role: {Type: AWS::IAM::Role, Properties: {AssumeRolePolicyDocument: {}}}
  Api:
    Type: AWS::ECS::TaskDefinition
    Properties:
      TaskRoleArn: !GetAtt Role.Arn
      ContainerDefinitions:
        - Name: api
          Image: !Sub "${AWS::AccountId}.dkr.ecr.${AWS::Region}.amazonaws.com/api:1"
          Environment:
            - {Name: DB_PASSWORD, Value: !Ref DbPassword}
            - {Name: API_TOKEN, Value: !Join ["", [a, b]]}
            - {Name: SESSION_SECRET, Value: LITERAL}
"""


def test_a_yaml_template_names_the_resource_and_cloudformations_spelling(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Intrinsics (!Ref, !Join) are values only a deployed stack knows: never flagged. The literal is, under the
    template's own path."""
    finding = only_finding(capsys, write(tmp_path, TEMPLATE, "stack.yaml"))
    assert finding["code"] == "secret-literal" and finding["container"] == "api"
    assert finding["field"] == "Resources.Api.Properties.ContainerDefinitions[0].Environment[SESSION_SECRET]"
    assert "LITERAL" not in finding["message"]


def test_a_json_template_with_long_form_intrinsics_is_read_the_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    task = {
        "Type": "AWS::ECS::TaskDefinition",
        "Properties": {
            "ContainerDefinitions": [
                {
                    "Name": "api",
                    "Image": "api",
                    "Environment": [
                        {"Name": "DB_PASSWORD", "Value": {"Ref": "DbPassword"}},
                        {"Name": "DB_TOKEN", "Value": {"Fn::Sub": "${Token}"}},
                        {"Name": "GITHUB_TOKEN", "Value": "ghp-literal"},
                    ],
                }
            ]
        },
    }
    path = write(tmp_path, {"Resources": {"Api": task, "Queue": {"Type": "AWS::SQS::Queue"}}}, "stack.json")
    finding = only_finding(capsys, path)
    assert finding["field"] == "Resources.Api.Properties.ContainerDefinitions[0].Environment[GITHUB_TOKEN]"


def test_a_template_without_task_definitions_is_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "Resources:\n  Q: {Type: AWS::SQS::Queue}\n", "queue.yaml")
    assert lint_json(capsys, path)[0] == 0


def test_the_example_templates_agent_is_checked_with_unknown_values_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ecs/cloudformation.yaml's agent, its grace made too long for its stopTimeout: flagged, in CloudFormation's
    spelling, though its DSN and secret are intrinsics (those give no agent-config finding)."""
    text = (ECS / "cloudformation.yaml").read_text()
    grace = '{Name: AGENT_SHUTDOWN_GRACE_SECONDS, Value: "5"}'
    assert text.count(grace) == 1
    finding = only_finding(capsys, write(tmp_path, text.replace(grace, grace.replace('"5"', '"29"')), "stack.yaml"))
    assert finding["code"] == "stop-timeout" and finding["container"] == "health-agent"
    assert finding["field"].startswith("Resources.TaskDefinition.Properties.ContainerDefinitions[")
    assert finding["field"].endswith("].StopTimeout")


@pytest.mark.parametrize(
    "agent",
    [
        {"image": "public.ecr.aws/acme/ecs-health-agent:0.1.0@sha256:ab"},  # the image's repository name
        {"image": "acme/sidecar:1", "command": ["ecs-health-agent", "serve"]},
        {"image": "acme/sidecar:1", "entryPoint": ["python", "-m", "agent"]},
        {"image": "acme/sidecar:1", "environment": [{"name": "AGENT_DB_DSN", "value": "postgresql://a@h/d"}]},
    ],
)
def test_the_agent_is_the_container_that_runs_ecs_health_agent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], agent: dict[str, object]
) -> None:
    """Found by its image, command, entryPoint or one of its own variables: here, its missing health check."""
    task = {"containerDefinitions": [{"name": "sidecar", **agent}]}
    code, report = lint_json(capsys, write(tmp_path, task))
    assert "health-check" in [f["code"] for f in report["findings"]] and code == 1


def test_other_agent_prefixed_variables_do_not_make_an_agent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """AGENT_* is a common prefix (other vendors' agents): only the agent's own variables count."""
    task = {
        "containerDefinitions": [
            {"name": "apm", "image": "vendor/apm", "environment": [{"name": "AGENT_MODE", "value": "x"}]}
        ]
    }
    assert lint_json(capsys, write(tmp_path, task))[0] == 0


def test_config_from_environment_reads_only_the_mapping_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """The task definition's environment, not this process's: an invalid AGENT_PORT here changes nothing."""
    monkeypatch.setenv("AGENT_PORT", "not-a-port")
    monkeypatch.setenv("AGENT_DB_DSN", "also not a dsn")
    config = config_from_environment({"AGENT_DB_DSN": "postgresql://app@db.internal:5432/x", "agent_db_password": "p"})
    assert (config.port, config.targets[0].host) == (8099, "db.internal")
    with pytest.raises(ConfigError) as raised:
        config_from_environment(
            {"AGENT_DB_DSN": "postgresql://app@db.internal/x", "AGENT_DB_PASSWORD": "p", "AGENT_PORT": "x"}
        )
    assert raised.value.problems == ["AGENT_PORT: expected a number (e.g. 5 or 2.5)"]
    assert json.dumps(raised.value.problems).count("not-a-port") == 0


@pytest.mark.parametrize(
    "text",
    [
        "Resources: {T: {Type: AWS::ECS::TaskDefinition, Properties: !If [c, {}, {}]}}",
        "Resources: {T: {Type: AWS::ECS::TaskDefinition, Properties: {ContainerDefinitions: [!If [c, {}, {}]]}}}",
        "Resources: {T: {Type: AWS::ECS::TaskDefinition, Properties: {ContainerDefinitions: !Ref Defs}}}",
        "Resources: {T: {Type: AWS::ECS::TaskDefinition}}",
    ],
)
def test_task_definitions_known_only_at_deploy_time_are_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    """Properties or containers that are intrinsics: nothing known, nothing flagged, no error."""
    assert lint_json(capsys, write(tmp_path, text, "stack.yaml")) == (
        0,
        {"files": [str(tmp_path / "stack.yaml")], "unreadable": [], "findings": [], "clean": True},
    )


def test_a_depends_on_without_condition_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    task = {
        "containerDefinitions": [
            {"name": "app", "image": "app", "dependsOn": [{"containerName": "agent"}]},
            {
                "name": "agent",
                "image": "acme/ecs-health-agent:1",
                "healthCheck": {"command": ["CMD", "ecs-health-agent", "healthcheck"]},
            },
        ]
    }
    code, report = lint_json(capsys, write(tmp_path, task))
    (finding,) = [f for f in report["findings"] if f["code"] == "depends-on"]
    assert code == 1 and "does not wait for the agent (no condition)" in finding["message"]
