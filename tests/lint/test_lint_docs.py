"""docs/lint.md's GitHub Actions, docker and pre-commit examples, run: each invokes `lint` as it would in CI or before a
commit, on this repository's ecs/ files (clean) and on the incident's task definition (flagged)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from agent import __version__
from tests.lint.support import REPO
from tests.lint.test_lint_cli import INCIDENT, INCIDENT_PASSWORD
from tests.support.dockerfile import final

DOC = REPO / "docs" / "lint.md"
BIN = Path(sys.executable).parent  # the venv's bin: ecs-health-agent, pre-commit


def yaml_blocks() -> list[Any]:
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.DOTALL)]


def workflow() -> dict[Any, Any]:
    (found,) = [block for block in yaml_blocks() if "jobs" in block]
    return dict(found)


def hook() -> dict[str, Any]:
    (found,) = [block for block in yaml_blocks() if "repos" in block]
    ((only,),) = [repo["hooks"] for repo in found["repos"]]
    return dict(only)


def run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)


def checkout_copy(destination: Path) -> None:
    """This repository's files as actions/checkout would give them (tracked and new, not ignored)."""
    listed = run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=REPO).stdout.split("\0")
    for name in [n for n in listed if n and (REPO / n).is_file()]:
        (destination / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, destination / name)


def test_the_actions_example_installs_this_checkout_at_this_version_and_its_lint_step_passes_on_ecs(
    tmp_path: Path,
) -> None:
    """The workflow is valid YAML with one job. It checks out this repository at this release's tag and its pip
    step, run as written (offline: no index, the dependencies already here) in a copy of that checkout, installs
    the `ecs-health-agent` console script; that script runs the lint step as written and exits 0 on ecs/."""
    (job,) = workflow()["jobs"].values()
    (source,) = [step["with"] for step in job["steps"] if step.get("with", {}).get("path")]
    assert source["repository"].endswith("/ecs-health-agent") and source["ref"] == f"v{__version__}"
    runs = [step["run"] for step in job["steps"] if "run" in step]
    install, lint = map(shlex.split, runs)
    assert install == ["pip", "install", f"./{source['path']}"]
    checkout_copy(tmp_path / source["path"])
    site = tmp_path / "site"
    offline = ["--no-index", "--no-deps", "--no-build-isolation", "--target", str(site)]
    installed = run([sys.executable, "-m", *install, *offline], cwd=tmp_path)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert lint[:2] == ["ecs-health-agent", "lint"] and all((REPO / f).is_file() for f in lint[2:])
    env = {**os.environ, "PYTHONPATH": str(site)}  # the installed copy, not this worktree's editable install
    proc = run([str(site / "bin" / lint[0]), *lint[1:]], cwd=REPO, env=env)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"{len(lint) - 2} files: clean\n", "")
    where = run([sys.executable, "-c", "import agent; print(agent.__file__)"], cwd=tmp_path, env=env)
    assert where.stdout.startswith(str(site)), where.stdout + where.stderr
    triggers = workflow()[True]  # YAML 1.1 (PyYAML) reads the key `on` as true; GitHub reads it as "on"
    assert triggers["pull_request"]["paths"] == ["ecs/**"]


def test_the_docker_alternative_runs_the_images_entry_point() -> None:
    """`docker run IMAGE lint FILE...` works because the image's ENTRYPOINT is ecs-health-agent (Dockerfile)."""
    (entrypoint,) = final("ENTRYPOINT")
    assert json.loads(entrypoint.args) == ["ecs-health-agent"]
    assert 'docker run --rm -v "$PWD:/work" IMAGE lint /work/ecs/task-definition.json' in DOC.read_text()


def test_the_pre_commit_hook_passes_ecs_and_stops_a_commit_of_the_incident(tmp_path: Path) -> None:
    """The hook, in a .pre-commit-config.yaml of a throwaway git repository, run by pre-commit itself: the ecs/
    files pass; the incident's task definition fails the hook, naming DB_PASSWORD, never its value."""
    spec = hook()
    assert re.search(spec["files"], "ecs/task-definition.json") and re.search(spec["files"], "ecs/cloudformation.yaml")
    repo = tmp_path / "repo"
    (repo / "ecs").mkdir(parents=True)
    for name in ("task-definition.json", "cloudformation.yaml"):
        shutil.copy(REPO / "ecs" / name, repo / "ecs" / name)
    (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump({"repos": [{"repo": "local", "hooks": [spec]}]}))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PRE_COMMIT_HOME": str(tmp_path / "cache")}
    env = {k: v for k, v in env.items() if not k.startswith("AGENT_")}
    assert run(["git", "init", "-q"], cwd=repo).returncode == 0
    assert run(["git", "add", "-A"], cwd=repo).returncode == 0
    passed = run([str(BIN / "pre-commit"), "run", "--all-files"], cwd=repo, env=env)
    assert passed.returncode == 0 and "lint ECS task definitions" in passed.stdout, passed.stdout + passed.stderr
    (repo / "ecs" / "task-definition.json").write_text(json.dumps(INCIDENT))
    assert run(["git", "add", "-A"], cwd=repo).returncode == 0
    failed = run([str(BIN / "pre-commit"), "run", "--all-files"], cwd=repo, env=env)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "ecs/task-definition.json: containerDefinitions[0].environment[DB_PASSWORD]" in failed.stdout
    assert INCIDENT_PASSWORD not in failed.stdout + failed.stderr
