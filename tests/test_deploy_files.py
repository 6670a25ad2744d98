"""ecs/: every file checked by the tool that owns its format (botocore's service models, cfn-lint, promtool), and
cross-checked against each other and against the agent itself (ports, paths, names, variables, metrics)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import botocore.session
import pytest
import yaml
from botocore.validate import ParamValidator
from prometheus_client.parser import text_string_to_metric_families

from agent.config.environ import DEFAULT_PORT
from agent.config.inputs import EnvSettings
from agent.config.load import load_config
from agent.config.models import AgentConfig
from agent.healthcheck import DEFAULT_TIMEOUT_SECONDS
from agent.outputs.connections import MAX_CONNECTIONS, connection_limit
from agent.outputs.emf import FAILURE_DIMENSIONS, PROBE_DIMENSIONS, READY_DIMENSIONS
from agent.outputs.log_queue import FLUSH_SECONDS
from agent.outputs.metrics import build_registry, render
from agent.outputs.server import HANDLER_TIMEOUT_SECONDS, PATHS, SHUTDOWN_TIMEOUT_SECONDS
from agent.probes.base import ProbeResult
from agent.runtime.readiness import Status
from agent.runtime.state import AgentState
from agent.shared.reasons import Reason
from tests.support.cfn import EXAMPLE, PARAMETER_STACK, stack
from tests.support.dockerfile import exec_form, final

REPO = Path(__file__).resolve().parents[1]
ECS = REPO / "ecs"
PROMETHEUS = ECS / "prometheus"
AGENT, BACKEND = "health-agent", "backend"
PROMTOOL_HELP = "promtool not found: install Debian's 'prometheus' package (scripts/setup.sh does)"
CFN_LINT_HELP = "cfn-lint not found: install the 'cfn-lint' package (pip install -e '.[dev]' does)"
ALARMS_PLACEHOLDER = "# CloudWatch alarms (EMF metrics)"


def load(name: str) -> Any:
    return json.loads((ECS / name).read_text())


def containers() -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in load("task-definition.json")["containerDefinitions"]}


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("environment", [])}


def secrets_of(container: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["valueFrom"] for s in container.get("secrets", [])}


def actions_of(statement: dict[str, Any]) -> list[str]:
    return statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]


def validate(service: str, operation: str, params: dict[str, Any]) -> str:
    """botocore's own validation of an API call's input against the service model; '' when valid."""
    shape = botocore.session.get_session().get_service_model(service).operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    return str(report.generate_report()) if report.has_errors() else ""


def tool(name: str, help_text: str) -> str:
    """The path of a command line tool: beside this Python first (the venv), then PATH; fail naming the package."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(help_text)
    return found


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=REPO, check=False)


# -- each file against its owner's schema ---------------------------------------------------------------------


def test_task_definition_is_a_valid_register_task_definition_input() -> None:
    assert validate("ecs", "RegisterTaskDefinition", load("task-definition.json")) == ""


def test_the_model_validation_is_real() -> None:
    """The same check rejects a misspelt field and a wrong type, so a pass above means something."""
    task = load("task-definition.json")
    task["containerDefinitions"][1]["healthcheck"] = task["containerDefinitions"][1].pop("healthCheck")
    task["containerDefinitions"][0]["essential"] = "yes"
    report = validate("ecs", "RegisterTaskDefinition", task)
    assert 'Unknown parameter in containerDefinitions[1]: "healthcheck"' in report
    assert "containerDefinitions[0].essential" in report


def test_target_group_is_a_valid_create_target_group_input() -> None:
    assert validate("elbv2", "CreateTargetGroup", load("target-group.json")) == ""


# Actions with no resource-level permissions (IAM's Service Authorization Reference): their statements take "*".
NO_RESOURCE_TYPES = {
    "ecr:GetAuthorizationToken",
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
}


@pytest.mark.parametrize(
    "name", ["task-role-policy.json", "execution-role-policy.json", "task-role-policy-ecs-exec.json"]
)
def test_policies_are_valid_create_policy_documents(name: str) -> None:
    text = (ECS / name).read_text()
    assert validate("iam", "CreatePolicy", {"PolicyName": name.removesuffix(".json"), "PolicyDocument": text}) == ""
    document = json.loads(text)
    assert document["Version"] == "2012-10-17"
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow" and statement.get("Sid")
        actions = actions_of(statement)
        assert not [a for a in actions if "*" in a], f"wildcard action in {statement['Sid']}"
        if statement["Resource"] == "*":
            assert set(actions) <= NO_RESOURCE_TYPES, f"{statement['Sid']}: only actions without resources take *"


def statements(name: str) -> dict[str, dict[str, Any]]:
    """The policy's statements by action (each statement here grants one kind of access)."""
    result = {}
    for statement in load(name)["Statement"]:
        result.update({action: statement for action in actions_of(statement)})
    return result


def test_task_role_policy_is_least_privilege() -> None:
    """rds-db:connect on one dbuser, GetSecretValue on one secret, GetParameter on one parameter (used only with
    AGENT_DB_PASSWORD_PARAMETER), kms:Decrypt only via Secrets Manager and via Parameter Store."""
    granted = statements("task-role-policy.json")
    assert set(granted) == {"rds-db:connect", "secretsmanager:GetSecretValue", "ssm:GetParameter", "kms:Decrypt"}
    parameter = granted["ssm:GetParameter"]["Resource"]
    assert re.fullmatch(r"arn:aws:ssm:[a-z0-9-]+:\d{12}:parameter/[A-Za-z0-9_./-]+", parameter), parameter
    decrypts = [s for s in load("task-role-policy.json")["Statement"] if actions_of(s) == ["kms:Decrypt"]]
    via = sorted(s["Condition"]["StringEquals"]["kms:ViaService"].split(".", 1)[0] for s in decrypts)
    assert via == ["secretsmanager", "ssm"], via
    granted["kms:Decrypt"] = next(s for s in decrypts if "secretsmanager" in str(s["Condition"]))
    dbuser = granted["rds-db:connect"]["Resource"]
    assert re.fullmatch(r"arn:aws:rds-db:[a-z0-9-]+:\d{12}:dbuser:db-[A-Z0-9]+/[a-z_][a-z0-9_]*", dbuser), dbuser
    assert granted["secretsmanager:GetSecretValue"]["Resource"] == env_of(containers()[AGENT])["AGENT_DB_SECRET_ID"]
    assert dbuser.endswith("/" + _dsn_user(env_of(containers()[AGENT])["AGENT_DB_DSN"]))
    _assert_kms_via_secrets_manager(granted["kms:Decrypt"])


def test_execution_role_policy_pulls_logs_and_injects_the_one_secret() -> None:
    granted = statements("execution-role-policy.json")
    secret_arns = {v.rsplit(":", 3)[0] for c in containers().values() for v in secrets_of(c).values()}
    assert secret_arns == {granted["secretsmanager:GetSecretValue"]["Resource"]}
    assert {"ecr:BatchGetImage", "logs:PutLogEvents", "logs:CreateLogStream"} <= set(granted)
    group = containers()[AGENT]["logConfiguration"]["options"]["awslogs-group"]
    assert granted["logs:PutLogEvents"]["Resource"].endswith(f":log-group:{group}:*")
    _assert_kms_via_secrets_manager(granted["kms:Decrypt"])


def _assert_kms_via_secrets_manager(statement: dict[str, Any]) -> None:
    assert statement["Resource"].startswith("arn:aws:kms:") and ":key/" in statement["Resource"]
    via = statement["Condition"]["StringEquals"]["kms:ViaService"]
    assert re.fullmatch(r"secretsmanager\.[a-z0-9-]+\.amazonaws\.com", via), via


def _dsn_user(dsn: str) -> str:
    return dsn.split("://", 1)[1].split("@", 1)[0]


def test_cloudformation_passes_cfn_lint() -> None:
    proc = run(tool("cfn-lint", CFN_LINT_HELP), "ecs/cloudformation.yaml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_alert_rules_pass_promtool_check_and_their_unit_tests() -> None:
    promtool = tool("promtool", PROMTOOL_HELP)
    checked = run(promtool, "check", "rules", "ecs/prometheus/alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run(promtool, "test", "rules", "ecs/prometheus/alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_scrape_config_passes_promtool_check_config() -> None:
    """scrape.yml is a complete Prometheus config (it loads alerts.yml as its rule file)."""
    proc = run(tool("promtool", PROMTOOL_HELP), "check", "config", "ecs/prometheus/scrape.yml")
    assert proc.returncode == 0 and "1 rule files found" in proc.stdout, proc.stdout + proc.stderr


# -- the files agree with each other and with the agent ---------------------------------------------------------


def test_agent_container_matches_the_image_and_the_agents_defaults() -> None:
    """Port 8099, the image's own healthcheck command, the image's user; the backend waits for HEALTHY."""
    agent, backend = containers()[AGENT], containers()[BACKEND]
    assert [m["containerPort"] for m in agent["portMappings"]] == [DEFAULT_PORT]
    (health,) = final("HEALTHCHECK")
    assert agent["healthCheck"]["command"] == ["CMD", *exec_form(health.args.split("CMD", 1)[1].strip())]
    assert agent["user"] == final("USER")[-1].args
    assert (agent["essential"], backend["essential"]) == (False, True)
    assert backend["dependsOn"] == [{"containerName": AGENT, "condition": "HEALTHY"}]
    for container in (agent, backend):
        assert container["logConfiguration"]["logDriver"] == "awslogs"


def test_agent_image_tag_is_the_package_version() -> None:
    """The example task definition deploys this release: its image tag moves with pyproject's `version`."""
    image = containers()[AGENT]["image"]
    assert image.rsplit(":", 1)[1] == importlib.metadata.version("ecs-health-agent"), image


def test_container_health_check_is_within_ecs_limits_and_fits_the_command() -> None:
    check = containers()[AGENT]["healthCheck"]
    assert 5 <= check["interval"] <= 300 and 1 <= check["retries"] <= 10 and 0 <= check["startPeriod"] <= 300
    assert 2 <= check["timeout"] <= 60 and check["timeout"] < check["interval"]
    assert check["timeout"] > DEFAULT_TIMEOUT_SECONDS, "the command's own deadline plus Python's start-up"


def test_stop_timeout_outlasts_the_agents_drain() -> None:
    """ECS sends SIGKILL after stopTimeout: the drain (grace + HTTP shutdown + the last log lines) must finish
    first (Fargate: <= 120)."""
    agent = containers()[AGENT]
    default = AgentConfig.model_fields["shutdown_grace_seconds"].default
    grace = float(env_of(agent).get("AGENT_SHUTDOWN_GRACE_SECONDS", default))
    assert grace + SHUTDOWN_TIMEOUT_SECONDS + FLUSH_SECONDS < agent["stopTimeout"] <= 120


def test_open_files_limit_leaves_the_full_connection_cap_and_room_for_the_probes() -> None:
    """ulimits nofile: soft = hard (the agent raises soft to hard anyway), high enough that the HTTP connection cap
    is the full MAX_CONNECTIONS with the probes' descriptors kept aside, even for many targets (ECS on EC2 starts
    containers at 1,024 soft otherwise)."""
    (nofile,) = [u for u in containers()[AGENT]["ulimits"] if u["name"] == "nofile"]
    assert nofile["softLimit"] == nofile["hardLimit"]
    assert connection_limit(nofile["softLimit"], targets=1000) == MAX_CONNECTIONS


def test_passwords_come_only_from_secrets_manager() -> None:
    """The incident's root cause, ruled out: no password in `environment`, one secret shared by both containers."""
    for container in containers().values():
        assert not [name for name in env_of(container) if "PASSWORD" in name], container["name"]
        for value in env_of(container).values():
            assert not re.search(r"://[^@/]*:[^@/]*@", value), f"a DSN with a password in {container['name']}"
        for value_from in secrets_of(container).values():
            assert value_from.startswith("arn:aws:secretsmanager:"), value_from
    agent, backend = secrets_of(containers()[AGENT]), secrets_of(containers()[BACKEND])
    assert agent["AGENT_DB_PASSWORD"] == backend["DB_PASSWORD"], "the agent must check the backend's password"
    secret_arn = agent["AGENT_DB_PASSWORD"].rsplit(":", 3)[0]  # ARN:json-key:version-stage:version-id
    assert env_of(containers()[AGENT])["AGENT_DB_SECRET_ID"] == secret_arn, "drift needs the same secret"


def test_agent_environment_is_a_valid_agent_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every AGENT_* name is one the agent reads, and the whole set loads (secrets as ECS would inject them)."""
    known = {f"AGENT_{name.upper()}" for name in EnvSettings.model_fields}
    agent = containers()[AGENT]
    names = set(env_of(agent)) | set(secrets_of(agent))
    assert names <= known, f"unknown variables: {sorted(names - known)}"
    for name in [n for n in os.environ if n.startswith(("AGENT_", "AWS_")) or n == "LOG_LEVEL"]:
        monkeypatch.delenv(name)
    for name, value in {**env_of(agent), **dict.fromkeys(secrets_of(agent), "injected-by-ecs")}.items():
        monkeypatch.setenv(name, value)
    config = load_config()
    (target,) = config.targets
    assert target.password is not None and target.secret_id and target.region == "eu-west-1"
    assert config.port == DEFAULT_PORT


def test_agent_probes_the_backends_shallow_health_on_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    """AGENT_APP_URL: the backend container's port on 127.0.0.1 (awsvpc: the task's containers share localhost),
    an HTTP GET of the path the template's BackendLivenessPath defaults to."""
    for name in [n for n in os.environ if n.startswith("AGENT_")]:
        monkeypatch.delenv(name)
    agent, backend = containers()[AGENT], containers()[BACKEND]
    monkeypatch.setenv("AGENT_APP_URL", env_of(agent)["AGENT_APP_URL"])
    monkeypatch.setenv("AGENT_DB_DSN", env_of(agent)["AGENT_DB_DSN"])
    monkeypatch.setenv("AGENT_DB_PASSWORD", "injected-by-ecs")
    app = load_config().app
    assert app is not None and (app.scheme, app.host, app.query) == ("http", "127.0.0.1", None)
    assert app.port == backend["portMappings"][0]["containerPort"] != DEFAULT_PORT
    parameters = template()["Parameters"]
    assert app.path == parameters["BackendLivenessPath"]["Default"]
    assert app.port == parameters["BackendPort"]["Default"]
    assert re.fullmatch(parameters["BackendLivenessPath"]["AllowedPattern"], app.path)
    in_template = {e["Name"]: e["Value"] for e in _template_container(AGENT)["Environment"]}
    assert in_template["AGENT_APP_URL"] == {"Fn::Sub": "http://127.0.0.1:${BackendPort}${BackendLivenessPath}"}


def test_target_group_checks_the_agents_ready_on_its_port() -> None:
    """/ready on 8099; traffic to the backend's port; timings within ALB limits and above the handler guard."""
    group, backend = load("target-group.json"), containers()[BACKEND]
    assert group["HealthCheckPath"] == "/ready" and "/ready" in PATHS
    assert group["HealthCheckPort"] == str(DEFAULT_PORT) != str(group["Port"])
    assert group["Port"] == backend["portMappings"][0]["containerPort"]
    interval, timeout = group["HealthCheckIntervalSeconds"], group["HealthCheckTimeoutSeconds"]
    assert 5 <= interval <= 300 and 2 <= timeout <= 120 and HANDLER_TIMEOUT_SECONDS < timeout < interval
    assert 2 <= group["HealthyThresholdCount"] <= 10 and 2 <= group["UnhealthyThresholdCount"] <= 10
    assert group["Matcher"] == {"HttpCode": "200"} and group["TargetType"] == "ip"


def template() -> dict[str, Any]:
    """The stack the JSON files describe (a password from a secret under a KMS key, no IAM auth, no ECS Exec)."""
    return stack(EXAMPLE)


def _template_container(name: str) -> dict[str, Any]:
    definitions: list[dict[str, Any]] = template()["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"]
    (found,) = [c for c in definitions if c["Name"] == name]
    return found


def camel(value: Any) -> Any:
    """CloudFormation's PascalCase keys in ECS API camelCase (Name -> name), recursively."""
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel(v) for v in value]
    return value


SAME_IN_BOTH = ("essential", "healthCheck", "dependsOn", "stopTimeout", "startTimeout", "restartPolicy", "cpu",
                "memory", "memoryReservation", "readonlyRootFilesystem", "mountPoints", "user", "ulimits")  # fmt: skip


def test_cloudformation_task_definition_is_the_json_one() -> None:
    """Same containers, flags, timings, health check and variable names; values differ only where parameterised."""
    props = template()["Resources"]["TaskDefinition"]["Properties"]
    in_template = {c["name"]: c for c in camel(props["ContainerDefinitions"])}
    task = load("task-definition.json")
    assert set(in_template) == set(containers())
    for name, expected in containers().items():
        got = in_template[name]
        assert {k: got.get(k) for k in SAME_IN_BOTH} == {k: expected.get(k) for k in SAME_IN_BOTH}, name
        assert set(env_of(got)) == set(env_of(expected)) and set(secrets_of(got)) == set(secrets_of(expected))
    assert in_template[AGENT]["portMappings"] == containers()[AGENT]["portMappings"]
    for key in ("networkMode", "requiresCompatibilities", "cpu", "memory", "runtimePlatform", "volumes"):
        assert camel(props)[key] == task[key], key


def test_cloudformation_service_target_group_and_roles() -> None:
    resources = template()["Resources"]
    group = resources["TargetGroup"]["Properties"]
    for key, value in load("target-group.json").items():
        if key.startswith(("HealthCheck", "Healthy", "Unhealthy", "Matcher", "Protocol", "TargetType")):
            assert group[key] == value, key
    service = resources["Service"]["Properties"]
    assert service["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    check = containers()[AGENT]["healthCheck"]
    first_healthy = check["startPeriod"] + group["HealthyThresholdCount"] * group["HealthCheckIntervalSeconds"]
    assert service["HealthCheckGracePeriodSeconds"] > first_healthy
    assert service["LoadBalancers"][0]["ContainerName"] == BACKEND
    assert resources["LogGroup"]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    # The policy files list every statement a stack may need (docs/deploy-ecs.md: drop what you do not use): the task
    # role's is the password, IAM-auth and parameter stacks' together; ECS Exec's is a file of its own.
    iam_stack = stack({"DbiResourceId": "db-ABCDEFGHIJKLMNOPQRSTUVWXY1"})["Resources"]
    parameter_stack = stack(PARAMETER_STACK)["Resources"]
    for role, policy in (("TaskRole", "task-role-policy.json"), ("ExecutionRole", "execution-role-policy.json")):
        in_template = set()
        for resources_of_a_stack in (resources, iam_stack, parameter_stack):
            (inline,) = resources_of_a_stack[role]["Properties"]["Policies"]
            in_template |= {a for s in inline["PolicyDocument"]["Statement"] for a in actions_of(s)}
        assert in_template == {a for s in load(policy)["Statement"] for a in actions_of(s)}, role


def test_cloudformation_keeps_the_marked_place_for_alarms() -> None:
    text = (ECS / "cloudformation.yaml").read_text()
    assert text.index("\nResources:") < text.index(ALARMS_PLACEHOLDER) < text.index("\nOutputs:")


def resolved(value: Any) -> Any:
    """A stand-in for each intrinsic (a string for !Ref/!Sub, the true branch of !If), for the API validator."""
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        return resolved(value["Fn::If"][1])
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("Ref", "Fn::Sub", "Fn::GetAtt"):
        return "resolved-" + next(iter(value))
    if isinstance(value, dict):
        return {k: resolved(v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolved(v) for v in value]
    return value


def test_alarms_are_valid_and_read_metrics_the_agent_emits() -> None:
    """Each alarm is a valid PutMetricAlarm, on a metric and a dimension set the EMF writer really produces."""
    alarms = {n: r["Properties"] for n, r in template()["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert set(alarms) == {"NotReadyAlarm", "DatabaseAuthFailureAlarm"}
    dimension_sets = {
        "Ready": READY_DIMENSIONS,
        "ProbeFailures": FAILURE_DIMENSIONS,
        "ProbeSuccess": PROBE_DIMENSIONS,
        "ProbeDuration": PROBE_DIMENSIONS,
    }
    for name, props in alarms.items():
        assert validate("cloudwatch", "PutMetricAlarm", {"AlarmName": name, **resolved(props)}) == "", name
        assert props["Namespace"] == AgentConfig(targets=()).cloudwatch_namespace, name
        dimensions = {d["Name"]: d["Value"] for d in props["Dimensions"]}
        assert tuple(dimensions) == dimension_sets[props["MetricName"]], name
        assert dimensions["ClusterName"] == {"Ref": "ClusterName"}, name
        assert dimensions["ServiceName"] == {"Ref": "ServiceName"}, name
        assert dimensions.get("Reason", "auth") in {r.value for r in Reason}, name
        assert dimensions.get("Probe", "db") in {"credentials", "secret", "token", "db"}, name
    containers_in_template = template()["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"]
    (agent,) = [c for c in containers_in_template if c["Name"] == AGENT]
    assert {"Name": "AGENT_CLOUDWATCH_EMF", "Value": "true"} in agent["Environment"], "alarms with no EMF lines"


def exposed_sample_names() -> set[str]:
    """Every sample name the agent's /metrics produces once probes have run (credentials with an expiry, database
    logins that read their facts)."""
    state = AgentState(AgentConfig(targets=()), [("credentials", "aws"), ("db", "default"), ("db", "reader")])
    identity = {"provider": "container-role", "account": "123456789012", "expires_at": "2030-01-02T03:04:05+00:00"}
    state.record(ProbeResult("credentials", "aws", True, None, "ok", "", "", 5.0, details=identity))
    facts = {"password_expires_at": "2030-01-02T03:04:05+00:00", "connections": "5", "max_connections": "97"}
    state.record(ProbeResult("db", "default", True, None, "ok", "", "", 5.0, details=facts))  # kept through failures
    facts = {"certificate_not_after": "2030-01-02T03:04:05+00:00"}  # what a database login read (db_facts)
    state.record(ProbeResult("db", "reader", True, None, "ok", "", "", 5.0, details=facts))
    state.record(ProbeResult("db", "default", False, Reason.AUTH, "pg:28P01", "rejected", "", 5.0))
    text = render(build_registry(state, process_metrics=False)).decode()
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def test_alerts_use_metrics_and_label_values_the_agent_exports() -> None:
    text = (PROMETHEUS / "alerts.yml").read_text()
    used = set(re.findall(r"\bhealth_agent_\w+", text))
    assert used and used <= exposed_sample_names(), sorted(used - exposed_sample_names())
    reasons = {v for group in re.findall(r'reason=~?"([^"]+)"', text) for v in group.split("|")}
    assert reasons and reasons <= {r.value for r in Reason}
    statuses = {v for group in re.findall(r'status=~?"([^"]+)"', text) for v in group.split("|")}
    assert statuses and statuses <= {s.value for s in Status} - {Status.DRAINING.value}


def test_scrape_config_finds_the_agent_where_the_task_definition_puts_it() -> None:
    """The agent's port and /metrics; the job name the alerts use; the Cloud Map name of the service."""
    (job,) = yaml.safe_load((PROMETHEUS / "scrape.yml").read_text())["scrape_configs"]
    assert job["metrics_path"] == "/metrics" and "/metrics" in PATHS
    (discovery,) = job["dns_sd_configs"]
    assert discovery["port"] == DEFAULT_PORT and discovery["type"] == "A"
    assert discovery["names"][0].split(".")[0] == load("task-definition.json")["family"]
    jobs = set(re.findall(r'job="([^"]+)"', (PROMETHEUS / "alerts.yml").read_text()))
    assert jobs == {job["job_name"]}
    assert template()["Parameters"]["ServiceName"]["Default"] == load("task-definition.json")["family"]
