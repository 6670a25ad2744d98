"""deploy/kubernetes/: valid against Kubernetes' own OpenAPI schemas (offline: kubernetes-validate bundles them),
and consistent with the agent (port, paths, user, drain, configuration) and with EKS's two ways to an IAM role."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shlex
from pathlib import Path
from typing import Any

import botocore.session
import kubernetes_validate
import pytest
import yaml
from botocore.validate import ParamValidator

from agent.config.environ import DEFAULT_PORT
from agent.config.inputs import EnvSettings
from agent.config.load import load_config
from agent.config.models import AgentConfig
from agent.outputs.log_queue import FLUSH_SECONDS
from agent.outputs.server import PATHS, SHUTDOWN_TIMEOUT_SECONDS
from tests.support.dockerfile import final

REPO = Path(__file__).resolve().parents[1]
KUBERNETES = REPO / "deploy" / "kubernetes"
EKS_DOC = REPO / "docs" / "eks.md"
# Native sidecars (an init container with restartPolicy: Always) are on by default from 1.29; the newest schema
# the package bundles is checked too, so a field removed later is caught.
OLDEST, NEWEST = "1.29.0", kubernetes_validate.latest_version()
ROLE_ARN = re.compile(r"arn:aws:iam::\d{12}:role/[\w+=,.@/-]+")


def documents(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((KUBERNETES / name).read_text()) if doc is not None]


def manifests() -> list[dict[str, Any]]:
    return [doc for path in sorted(KUBERNETES.glob("*.yaml")) for doc in documents(path.name)]


def deployment() -> dict[str, Any]:
    (found,) = [doc for doc in manifests() if doc["kind"] == "Deployment"]
    return found


def service_account() -> dict[str, Any]:
    (found,) = [doc for doc in manifests() if doc["kind"] == "ServiceAccount"]
    return found


def pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = deployment()["spec"]["template"]["spec"]
    return spec


def agent_container() -> dict[str, Any]:
    (agent,) = [c for c in pod_spec()["initContainers"] if c["name"] == "health-agent"]
    found: dict[str, Any] = agent
    return found


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def validate(doc: dict[str, Any], version: str) -> str:
    """kubernetes-validate in strict mode (unknown fields are errors); '' when valid, else the error."""
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return f"{exc.path}: {exc.message}"
    return ""


# -- each manifest against Kubernetes' schema ---------------------------------------------------------------------


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_every_manifest_is_valid_against_kubernetes_own_schema(version: str) -> None:
    kinds = sorted(doc["kind"] for doc in manifests())
    assert kinds == ["Deployment", "ServiceAccount"]
    for doc in manifests():
        assert validate(doc, version) == "", doc["kind"]


def test_the_schema_validation_is_real() -> None:
    """The same check rejects a misspelt field, a wrong type, and the sidecar's restartPolicy before Kubernetes
    had native sidecars (1.27), so a pass above means something."""
    misspelt = deployment()
    misspelt["spec"]["template"]["spec"]["initContainers"][0]["readinessprobe"] = {}
    assert "readinessprobe" in validate(misspelt, NEWEST)
    wrong_type = deployment()
    wrong_type["spec"]["replicas"] = "two"
    assert validate(wrong_type, NEWEST) != ""
    assert "restartPolicy" in validate(deployment(), "1.27.0")


# -- the sidecar and its probes -----------------------------------------------------------------------------------


def test_the_agent_is_a_native_sidecar_and_the_backend_the_main_container() -> None:
    spec = pod_spec()
    assert [c["name"] for c in spec["initContainers"]] == ["health-agent"]
    assert agent_container()["restartPolicy"] == "Always"
    assert [c["name"] for c in spec["containers"]] == ["backend"]


def test_agent_image_tag_is_the_package_version() -> None:
    image = agent_container()["image"]
    assert image.rsplit(":", 1)[1] == importlib.metadata.version("ecs-health-agent"), image


def test_probes_ask_the_agents_own_paths_on_its_port() -> None:
    """readiness /ready (the ALB check's path on ECS), liveness and start-up /health, by the port's name."""
    agent = agent_container()
    ports = {p["name"]: p["containerPort"] for p in agent["ports"]}
    paths = {}
    for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
        http = agent[kind]["httpGet"]
        assert ports[http["port"]] == DEFAULT_PORT, kind
        assert http["path"] in PATHS, kind
        paths[kind] = http["path"]
    assert paths == {"readinessProbe": "/ready", "livenessProbe": "/health", "startupProbe": "/health"}


def test_probe_timings_leave_the_agent_time_to_answer() -> None:
    """Each timeout is shorter than its period; liveness gives up later than readiness (a restart is the last
    resort); the start-up budget covers the agent's start (pydantic, aiohttp, the first bind)."""
    agent = agent_container()
    for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
        probe = agent[kind]
        assert probe["timeoutSeconds"] <= probe["periodSeconds"] or kind == "startupProbe", kind
    live, ready = agent["livenessProbe"], agent["readinessProbe"]
    assert live["periodSeconds"] * live["failureThreshold"] > ready["periodSeconds"] * ready["failureThreshold"]
    start = agent["startupProbe"]
    assert start["periodSeconds"] * start["failureThreshold"] >= 15, "the ECS healthCheck's startPeriod"


def test_containers_run_read_only_as_the_images_user_without_capabilities() -> None:
    spec = pod_spec()
    assert spec["securityContext"]["runAsNonRoot"] is True
    user, group = final("USER")[-1].args.split(":")
    assert (spec["securityContext"]["runAsUser"], spec["securityContext"]["runAsGroup"]) == (int(user), int(group))
    for container in [*spec["initContainers"], *spec["containers"]]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, container["name"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]
        assert context["capabilities"]["drop"] == ["ALL"], container["name"]


def test_termination_grace_outlasts_the_agents_drain() -> None:
    """The kubelet kills after terminationGracePeriodSeconds; the sidecar is stopped last, so its drain (grace +
    HTTP shutdown + the last log lines) must fit in what is left of that budget."""
    default = AgentConfig.model_fields["shutdown_grace_seconds"].default
    grace = float(env_of(agent_container()).get("AGENT_SHUTDOWN_GRACE_SECONDS", default))
    assert grace + SHUTDOWN_TIMEOUT_SECONDS + FLUSH_SECONDS < pod_spec()["terminationGracePeriodSeconds"]


def secret_refs(container: dict[str, Any]) -> dict[str, dict[str, str]]:
    """env names -> their valueFrom.secretKeyRef ({name, key})."""
    entries = container.get("env", [])
    return {e["name"]: e["valueFrom"]["secretKeyRef"] for e in entries if "secretKeyRef" in e.get("valueFrom", {})}


def test_agent_environment_is_a_valid_agent_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every AGENT_* name is one the agent reads and the set loads; the password is never a literal: the agent
    gets the backend's Kubernetes Secret key as AGENT_DB_PASSWORD and re-reads the Secrets Manager secret it is
    synced from (AGENT_DB_SECRET_ID), so db:password_drift can see a stale password in the pod."""
    known = {f"AGENT_{name.upper()}" for name in EnvSettings.model_fields}
    env = env_of(agent_container())
    assert set(env) <= known, f"unknown variables: {sorted(set(env) - known)}"
    assert not [name for name in env if "PASSWORD" in name]
    backend_ref = secret_refs(pod_spec()["containers"][0])["DB_PASSWORD"]
    assert secret_refs(agent_container()) == {"AGENT_DB_PASSWORD": backend_ref}
    for name in [n for n in os.environ if n.startswith(("AGENT_", "AWS_")) or n == "LOG_LEVEL"]:
        monkeypatch.delenv(name)
    for name, value in {**env, "AGENT_DB_PASSWORD": "injected-by-the-kubelet"}.items():
        monkeypatch.setenv(name, value)
    config = load_config()
    (target,) = config.targets
    assert target.secret_id and target.password is not None and target.region == "eu-west-1"
    assert config.port == DEFAULT_PORT and config.app is not None
    backend_ports = [p["containerPort"] for p in pod_spec()["containers"][0]["ports"]]
    assert (config.app.host, config.app.port) == ("127.0.0.1", backend_ports[0])


# -- the IAM role: IRSA, or EKS Pod Identity ----------------------------------------------------------------------


def test_the_pod_runs_as_the_service_account_with_the_irsa_annotation() -> None:
    account, pod = service_account(), deployment()
    assert pod_spec()["serviceAccountName"] == account["metadata"]["name"]
    assert account["metadata"]["namespace"] == pod["metadata"]["namespace"]
    assert ROLE_ARN.fullmatch(account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"])


def test_the_irsa_trust_subject_named_is_this_service_account() -> None:
    meta = service_account()["metadata"]
    subject = f"system:serviceaccount:{meta['namespace']}:{meta['name']}"
    assert subject in (KUBERNETES / "serviceaccount.yaml").read_text()
    assert subject in EKS_DOC.read_text()


def pod_identity_commands(text: str) -> list[dict[str, str]]:
    """Each `aws eks create-pod-identity-association ...` in text (comments and continuation lines joined), as
    the API's parameters (--cluster-name -> clusterName)."""
    joined = re.sub(r"\\\n[#\s]*", " ", text)
    found = []
    for match in re.finditer(r"aws eks create-pod-identity-association([^\n`]*)", joined):
        words = shlex.split(match.group(1))
        options = dict(zip(words[::2], words[1::2], strict=True))
        found.append({_camel(option.removeprefix("--")): value for option, value in options.items()})
    return found


def _camel(option: str) -> str:
    first, *rest = option.split("-")
    return first + "".join(word.title() for word in rest)


@pytest.mark.parametrize("path", [KUBERNETES / "serviceaccount.yaml", EKS_DOC], ids=lambda p: p.name)
def test_the_pod_identity_command_is_a_valid_call_for_this_service_account(path: Path) -> None:
    """The documented alternative is botocore's valid CreatePodIdentityAssociation input, for this namespace and
    service account and a role ARN."""
    (params,) = pod_identity_commands(path.read_text())
    shape = botocore.session.get_session().get_service_model("eks").operation_model("CreatePodIdentityAssociation")
    report = ParamValidator().validate(params, shape.input_shape)
    assert not report.has_errors(), report.generate_report()
    meta = service_account()["metadata"]
    assert (params["namespace"], params["serviceAccount"]) == (meta["namespace"], meta["name"])
    assert ROLE_ARN.fullmatch(params["roleArn"])


def test_the_command_parsing_is_real() -> None:
    """A misspelt option fails botocore's model: the check above can fail."""
    (params,) = pod_identity_commands("aws eks create-pod-identity-association --cluster-name c --namespce n")
    shape = botocore.session.get_session().get_service_model("eks").operation_model("CreatePodIdentityAssociation")
    assert "namespce" in ParamValidator().validate(params, shape.input_shape).generate_report()


def test_the_documented_kubernetes_scrape_config_keeps_the_agents_port_and_sets_ecs_service() -> None:
    """docs/eks.md's scrape configuration keeps the port the Deployment names and sets the `ecs_service` label the
    dashboard and the alert rules group by. (Debian's promtool is built without Kubernetes discovery, so it
    cannot check this block: it refuses `kubernetes_sd_configs` as an unknown field.)"""
    (block,) = re.findall(r"```yaml\n(scrape_configs:.*?)```", EKS_DOC.read_text(), re.S)
    (job,) = yaml.safe_load(block)["scrape_configs"]
    assert job["kubernetes_sd_configs"][0]["namespaces"]["names"] == [deployment()["metadata"]["namespace"]]
    keep = next(rule for rule in job["relabel_configs"] if rule.get("action") == "keep")
    assert keep["source_labels"] == ["__meta_kubernetes_pod_container_port_name"]
    assert keep["regex"] == agent_container()["ports"][0]["name"]
    by_target = {rule.get("target_label"): rule["source_labels"] for rule in job["relabel_configs"]}
    label = "__meta_kubernetes_pod_label_" + re.sub(r"[^a-z0-9]", "_", "app.kubernetes.io/name")
    assert by_target["ecs_service"] == [label]
    assert "app.kubernetes.io/name" in deployment()["spec"]["template"]["metadata"]["labels"]
