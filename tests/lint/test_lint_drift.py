"""`drift-blind`: the agent re-reads the current password but is not given the one ECS injected into the backend, so
db:password_drift (a stale injected password, the incident) can never be seen; and when that is not the case."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.lint.support import AGENT, BACKEND, ECS, example, lint_json, only_finding, write

OTHER_SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/orders/other-XyZ123:password::"
PARAMETER_ARN = "arn:aws:ssm:eu-west-1:123456789012:parameter/prod/orders/db-password"


def without_agent_password(task: dict[str, Any]) -> dict[str, Any]:
    """The README's old snippet: AGENT_DB_SECRET_ID only, no secrets[AGENT_DB_PASSWORD]."""
    del task["containerDefinitions"][AGENT]["secrets"]
    return task


def test_an_agent_without_the_injected_password_is_drift_blind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The backend's DB_PASSWORD comes from the secret the agent re-reads; the agent gets no AGENT_DB_PASSWORD."""
    finding = only_finding(capsys, write(tmp_path, without_agent_password(example())))
    assert (finding["code"], finding["container"], finding["field"]) == (
        "drift-blind",
        "health-agent",
        f"containerDefinitions[{AGENT}].secrets",
    )
    assert "(AGENT_DB_SECRET_ID)" in finding["message"]
    assert "the same `secrets` entry as container backend's DB_PASSWORD, named AGENT_DB_PASSWORD" in finding["message"]


@pytest.mark.parametrize(
    ("name", "value_from"),
    [
        ("DB_CREDENTIALS", PARAMETER_ARN),  # not named a password: the parameter the agent re-reads
        ("DATABASE_PASSWD", OTHER_SECRET),  # another secret, named a password
    ],
)
def test_a_backend_password_from_the_same_source_or_under_a_password_name_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, value_from: str
) -> None:
    """With AGENT_DB_PASSWORD_PARAMETER: the backend's entry is found by its valueFrom or by its name."""
    task = without_agent_password(example())
    agent = task["containerDefinitions"][AGENT]
    agent["environment"] = [e for e in agent["environment"] if e["name"] != "AGENT_DB_SECRET_ID"]
    agent["environment"].append({"name": "AGENT_DB_PASSWORD_PARAMETER", "value": "/prod/orders/db-password"})
    task["containerDefinitions"][BACKEND]["secrets"] = [{"name": name, "valueFrom": value_from}]
    finding = only_finding(capsys, write(tmp_path, task))
    assert finding["code"] == "drift-blind"
    assert f"container backend's {name}, named AGENT_DB_PASSWORD" in finding["message"]


@pytest.mark.parametrize("name", ["task-definition.json", "cloudformation.yaml"])
def test_the_ecs_files_give_the_agent_the_injected_password(capsys: pytest.CaptureFixture[str], name: str) -> None:
    code, report = lint_json(capsys, ECS / name)
    assert code == 0 and not [f for f in report["findings"] if f["code"] == "drift-blind"], report


def test_an_iam_auth_task_is_not_drift_blind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """IAM auth: the backend gets no password secret and the agent reads no password source."""
    task = without_agent_password(example())
    del task["containerDefinitions"][BACKEND]["secrets"]
    agent = task["containerDefinitions"][AGENT]
    agent["environment"] = [e for e in agent["environment"] if e["name"] != "AGENT_DB_SECRET_ID"]
    agent["environment"].append({"name": "AGENT_DB_IAM_AUTH", "value": "true"})
    code, report = lint_json(capsys, write(tmp_path, task))
    assert (code, report["findings"]) == (0, [])


@pytest.mark.parametrize("secrets", [None, [{"name": "STRIPE_API_KEY", "valueFrom": OTHER_SECRET}]])
def test_a_backend_without_a_password_secret_is_not_drift_blind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], secrets: list[dict[str, str]] | None
) -> None:
    """The agent re-reads a secret, but nothing injects the backend's password (it reads it some other way): the
    agent's AGENT_DB_SECRET_ID alone is then the right set-up."""
    task = without_agent_password(example())
    backend = task["containerDefinitions"][BACKEND]
    if secrets is None:
        del backend["secrets"]
    else:
        backend["secrets"] = secrets
    code, report = lint_json(capsys, write(tmp_path, task))
    assert (code, report["findings"]) == (0, [])
