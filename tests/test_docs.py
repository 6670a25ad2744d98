"""The README and docs/: the README fits on a screen or two, every page is reachable from it, every link and anchor
resolves, and the examples are real (JSON parses, the task-definition snippet passes botocore's ECS model, a
`--config` example loads, every variable and command named exists)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.cli import main
from agent.config.inputs import EnvSettings
from agent.config.load import load_config
from tests.test_deploy_files import validate

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
PAGES = [README, *DOCS, REPO / "ecs" / "README.md", REPO / "bench" / "RESULTS.md"]
README_LIMIT = 12 * 1024  # bytes: "a README that fits on a screen or two" (issue 15)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
# Variables other programs define that the docs name beside the agent's own (botocore, ECS, EKS, the tests).
OTHERS = {"AGENT_*"}


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {slug(heading) for heading in re.findall(r"(?m)^#+ (.*)$", text)}


def blocks(page: Path, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(page.read_text()) if lang == language]


def test_the_readme_fits_on_a_screen_or_two() -> None:
    """At most 12 KiB: the reference lives in docs/."""
    size = len(README.read_bytes())
    assert size <= README_LIMIT, f"README.md is {size} bytes, over {README_LIMIT}: move reference material to docs/"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    """A page nobody can reach from the README does not exist for a new user."""
    linked = {(README.parent / target.partition("#")[0]).resolve() for target in LINK.findall(README.read_text())}
    missing = [page.name for page in DOCS if page.resolve() not in linked]
    assert not missing, f"docs pages not linked from README.md: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_link_and_anchor_resolves(page: Path) -> None:
    """Relative links name files that exist; `#anchors` name headings of the page they point at."""
    broken = []
    for target in LINK.findall(FENCE.sub("", page.read_text())):
        if re.match(r"^[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        if not destination.exists():
            broken.append(f"{target}: no such file")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, f"{page.relative_to(REPO)}: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_json_examples_parse(page: Path) -> None:
    """A JSON example is one document, or JSON lines (the log and EMF examples)."""
    for body in blocks(page, "json"):
        try:
            json.loads(body)
        except json.JSONDecodeError:
            for line in body.splitlines():
                json.loads(line)


def clean_environment(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]) -> None:
    """Only `environment` for the agent to read: no AGENT_* or AWS variable of the machine running the tests."""
    for name in list(os.environ):
        if name.startswith(("AGENT_", "AWS_")):
            monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)


def readme_task_definition() -> tuple[dict[str, Any], dict[str, Any]]:
    """The README's agent container, and a task definition with it beside a backend that gets DB_PASSWORD from
    the secret the agent re-reads (its `password` key) and waits for the agent HEALTHY, as the README says."""
    (snippet,) = [json.loads(body) for body in blocks(README, "json") if '"health-agent"' in body]
    secret_id = {item["name"]: item["value"] for item in snippet["environment"]}["AGENT_DB_SECRET_ID"]
    backend = {
        "name": "backend",
        "image": "backend:1",
        "secrets": [{"name": "DB_PASSWORD", "valueFrom": f"{secret_id}:password::"}],
        "dependsOn": [{"containerName": "health-agent", "condition": "HEALTHY"}],
    }
    task = {
        "family": "orders",
        "taskRoleArn": "arn:aws:iam::123456789012:role/orders-task",  # the README's IAM section: the agent needs one
        "containerDefinitions": [backend, snippet],
    }
    return snippet, task


def test_the_readme_task_definition_snippet_is_a_valid_container_definition(monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's container passes botocore's ECS RegisterTaskDefinition model, with the backend that needs it,
    and loads as the agent's configuration (its `secrets` as ECS would inject them)."""
    snippet, task = readme_task_definition()
    assert validate("ecs", "RegisterTaskDefinition", task) == ""
    environment = {item["name"]: item["value"] for item in snippet["environment"]}
    injected = {item["name"]: "injected-by-ecs" for item in snippet["secrets"]}
    assert set(injected) == {"AGENT_DB_PASSWORD"}
    clean_environment(monkeypatch, {**environment, **injected})
    config = load_config()
    assert config.targets[0].secret_id == environment["AGENT_DB_SECRET_ID"]


def test_the_readme_task_definition_passes_lint_and_fails_without_the_agents_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`lint` on the README's container beside its backend exits 0; without the agent's `secrets` entry it exits 1
    with drift-blind: the agent could never see a stale injected password."""
    _snippet, task = readme_task_definition()
    path = tmp_path / "task.json"
    path.write_text(json.dumps(task))
    assert main(["lint", "--json", str(path)]) == 0, capsys.readouterr().out
    capsys.readouterr()
    del task["containerDefinitions"][1]["secrets"]
    path.write_text(json.dumps(task))
    assert main(["lint", "--json", str(path)]) == 1
    findings = json.loads(capsys.readouterr().out)["findings"]
    assert [(f["code"], f["container"]) for f in findings] == [("drift-blind", "health-agent")]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_config_file_examples_load(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `--config` example (YAML with database.connections) loads through the agent's own configuration code."""
    for index, body in enumerate(blocks(page, "yaml")):
        if "connections:" not in body:
            continue
        assert "database" in yaml.safe_load(body)
        path = tmp_path / f"example-{index}.yaml"
        path.write_text(body)
        clean_environment(monkeypatch, {})
        config = load_config(path)
        assert config.targets, body


def test_every_agent_variable_named_exists() -> None:
    """Each AGENT_* name in the README and docs is one the agent reads: a typo in the docs fails here."""
    known = {f"AGENT_{name.upper()}" for name in EnvSettings.model_fields} | OTHERS
    named = {name for page in PAGES for name in re.findall(r"\bAGENT_[A-Z_]+\b\*?", page.read_text())}
    assert not sorted(named - known), "documented but not read by the agent"


def test_every_command_named_in_the_readme_runs() -> None:
    """`ecs-health-agent COMMAND` in the README's examples is a command the CLI has (its --help exits 0)."""
    text = README.read_text()
    commands = set(re.findall(r"ecs-health-agent (\w+)", text))
    for command in sorted(commands):
        done = subprocess.run(
            [sys.executable, "-m", "agent", command, "--help"], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, f"ecs-health-agent {command} --help: {done.stderr}"
