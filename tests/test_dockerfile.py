"""The Dockerfile, read as Docker reads it (no engine here): base image, user, health check, port, entrypoint."""

from __future__ import annotations

import fnmatch
import re
import tomllib

import pytest

from agent.config.environ import DEFAULT_PORT
from agent.config.models import AgentConfig
from tests.support.dockerfile import DOCKERIGNORE, REPO, exec_form, final, instructions, stages


def base_images() -> list[str]:
    """Every FROM image with ARG defaults substituted."""
    defaults = dict(i.args.split("=", 1) for i in instructions() if i.keyword.upper() == "ARG" and "=" in i.args)
    images = []
    for stage in stages():
        image = stage[0].args.split()[0]
        images.append(re.sub(r"\$\{(\w+)\}", lambda m: defaults.get(m.group(1), m.group(0)), image))
    return images


def test_base_image_is_python_slim_pinned_to_a_minor_version() -> None:
    """Every stage builds on python:3.N[.P]-slim-<debian release>, never `latest` or a bare major version."""
    images = base_images()
    assert len(images) >= 2, "expected a multi-stage build (builder + runtime)"
    for image in images:
        assert re.fullmatch(r"python:3\.\d+(\.\d+)?-slim-(bookworm|trixie)(@sha256:[0-9a-f]{64})?", image), image


def test_runtime_stage_copies_a_built_environment_from_the_builder() -> None:
    """The runtime stage gets the virtualenv from the builder, not the source tree or a pip install."""
    copies = [i.args for i in final("COPY")]
    assert any(c.startswith("--from=build ") for c in copies), copies
    assert not [i for i in final("RUN") if "pip" in i.args], "the runtime stage must not run pip"


def test_the_package_is_installed_with_pyproject_dependency_ranges_only() -> None:
    """The builder installs the wheel built from pyproject.toml: no second, hand-kept dependency list."""
    runs = " ".join(i.args for stage in stages()[:-1] for i in stage if i.keyword.upper() == "RUN")
    assert "pip wheel" in runs and "ecs_health_agent-" in runs
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name = re.split(r"[<>=!~\[ ]", requirement, maxsplit=1)[0]
        assert not re.search(rf"\b{re.escape(name)}\s*[<>=]", runs, re.IGNORECASE), f"{name} pinned in Dockerfile"


def test_final_user_is_numeric_and_not_root() -> None:
    users = final("USER")
    assert users, "the runtime stage must set USER"
    user = users[-1].args.split(":")[0]
    assert user.isdigit() and int(user) != 0, users[-1]


def test_healthcheck_runs_a_declared_console_script() -> None:
    """HEALTHCHECK CMD is exec form and its program is an entry point in [project.scripts]."""
    (health,) = final("HEALTHCHECK")
    command = exec_form(health.args.split("CMD", 1)[1].strip())
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert command[0] in scripts and command[1:] == ["healthcheck"], command
    runs = [i.args for i in instructions() if i.keyword.upper() == "RUN"]
    assert not [r for r in runs if "curl" in r or "wget" in r], "the health check must not need curl"


def test_expose_matches_the_agents_default_port() -> None:
    (expose,) = final("EXPOSE")
    assert int(expose.args.split("/")[0]) == DEFAULT_PORT == AgentConfig.model_fields["port"].default


def test_entrypoint_is_exec_form_so_the_agent_is_pid_1() -> None:
    """Exec form: SIGTERM from ECS reaches the agent itself (it drains), not a /bin/sh that ignores it."""
    (entrypoint,) = final("ENTRYPOINT")
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert exec_form(entrypoint.args)[0] in scripts
    (cmd,) = final("CMD")
    assert exec_form(cmd.args) == ["serve"]


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore excludes a context path (its patterns, `**` and directory prefixes; no `!`)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    return any(
        fnmatch.fnmatch(prefix, pattern) or fnmatch.fnmatch(prefix, pattern.removeprefix("**/"))
        for pattern in patterns
        for prefix in prefixes
    )


@pytest.fixture
def ignore_patterns() -> list[str]:
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    patterns = [line for line in lines if line and not line.startswith("#")]
    assert not any(p.startswith("!") for p in patterns), "exceptions are not modelled by this test"
    return patterns


def test_dockerignore_keeps_venv_git_and_tests_out(ignore_patterns: list[str]) -> None:
    for path in (".venv/bin/python", ".git/config", "tests/test_dockerfile.py", "agent/__pycache__/cli.pyc"):
        assert ignored(path, ignore_patterns), f"{path} would be sent to the Docker daemon"


def test_everything_the_dockerfile_copies_exists_and_is_not_ignored(ignore_patterns: list[str]) -> None:
    """A COPY of an ignored or missing path fails the build (README.md is the package's readme)."""
    for stage in stages():
        for copy in (i for i in stage if i.keyword.upper() == "COPY" and "--from=" not in i.args):
            for source in copy.args.split()[:-1]:
                assert (REPO / source).exists(), f"COPY {source}: no such file"
                assert not ignored(source, ignore_patterns), f"COPY {source}: excluded by .dockerignore"
