"""The Dockerfile, read as Docker reads it (no engine here): base image, the locked installs, user, health check,
port, entrypoint; and the build context, which keeps the sandbox (and so moto) out of the image."""

from __future__ import annotations

import ast
import hashlib
import re
import shlex
import stat
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from agent.config.environ import DEFAULT_PORT
from agent.config.models import AgentConfig
from tests.support.dockerfile import (
    REPO,
    PipCall,
    arg_defaults,
    copied_files,
    env,
    exec_form,
    final,
    ignore_patterns,
    ignored,
    instructions,
    pip_calls,
    stage_named,
    stages,
)

VENV = "/opt/venv"
VENV_PYTHON = f"{VENV}/bin/python"


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


def build_calls() -> list[PipCall]:
    """The pip commands of the build stages (the runtime stage runs none)."""
    return [call for stage in stages()[:-1] for call in pip_calls(stage)]


def installs_into(interpreter: str) -> list[PipCall]:
    return [c for c in build_calls() if c.action == "install" and c.interpreter == interpreter]


def test_the_image_environment_gets_the_runtime_lock_with_hashes_and_wheels_only() -> None:
    """The virtualenv the image ships is filled from requirements/runtime.txt: every file hash-checked, no sdist
    built, nothing resolved beyond the lock."""
    copied = [i.args for stage in stages()[:-1] for i in stage if i.keyword.upper() == "COPY"]
    assert any("requirements/runtime.txt" in c.split()[:-1] for c in copied), copied
    locked = [c for c in installs_into(VENV_PYTHON) if c.values.get("-r") == ["requirements/runtime.txt"]]
    assert len(locked) == 1, installs_into(VENV_PYTHON)
    assert {"--require-hashes", "--no-deps"} <= locked[0].flags, locked[0]
    assert locked[0].values.get("--only-binary") == [":all:"], locked[0]


def test_the_agent_wheel_is_installed_without_its_dependencies() -> None:
    """The wheel is built from the source with the locked build backend and installed with --no-deps."""
    (wheel,) = [c for c in build_calls() if c.action == "wheel"]
    assert {"--no-deps", "--no-build-isolation"} <= wheel.flags, wheel
    assert wheel.arguments == (".",), wheel
    (wheel_dir,) = wheel.values["--wheel-dir"]
    agent = [c for c in installs_into(VENV_PYTHON) if c.arguments]
    assert len(agent) == 1, installs_into(VENV_PYTHON)
    assert agent[0].arguments == (f"{wheel_dir}/ecs_health_agent-*.whl",), agent[0]
    assert "--no-deps" in agent[0].flags and not agent[0].values, agent[0]


def test_nothing_but_the_runtime_lock_and_the_wheel_reaches_the_image_environment() -> None:
    """Into the shipped virtualenv go exactly two installs; it is created without pip; no other pip command of
    the build targets it; the builder's own Python gets only the build lock, hash-checked."""
    runs = " ".join(i.args for stage in stages()[:-1] for i in stage if i.keyword.upper() == "RUN")
    assert f"python -m venv --without-pip {VENV}" in " ".join(runs.split()), runs
    into_venv = installs_into(VENV_PYTHON)
    installed = sorted((*c.values.get("-r", []), *c.arguments) for c in into_venv)
    assert installed == [("/wheels/ecs_health_agent-*.whl",), ("requirements/runtime.txt",)], into_venv
    others = [c for c in build_calls() if c.interpreter not in {VENV_PYTHON, "python"}]
    assert not others, f"pip commands on another environment: {others}"
    for call in installs_into("python"):
        assert call.values.get("-r") == ["requirements/build.txt"] and not call.arguments, call
        assert {"--require-hashes", "--no-deps"} <= call.flags, call
    for call in build_calls():
        assert not {"-c", "--index-url", "--extra-index-url", "--find-links"} & call.values.keys(), call


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


@pytest.fixture(name="patterns")
def patterns_fixture() -> list[str]:
    return ignore_patterns()


def test_dockerignore_keeps_venv_git_and_tests_out(patterns: list[str]) -> None:
    for path in (".venv/bin/python", ".git/config", "tests/test_dockerfile.py", "agent/__pycache__/cli.pyc"):
        assert ignored(path, patterns), f"{path} would be sent to the Docker daemon"


def test_everything_the_dockerfile_copies_exists_and_is_not_ignored(patterns: list[str]) -> None:
    """A COPY of an ignored or missing path fails the build (README.md is the package's readme)."""
    for stage in stages():
        for copy in (i for i in stage if i.keyword.upper() == "COPY" and "--from=" not in i.args):
            for source in copy.args.split()[:-1]:
                assert (REPO / source).exists(), f"COPY {source}: no such file"
                assert not ignored(source, patterns), f"COPY {source}: excluded by .dockerignore"


def test_dockerignore_keeps_the_sandbox_out_of_the_context(patterns: list[str]) -> None:
    """agent/sandbox (the demo, which needs moto) is never sent to the Docker daemon, so no stage can copy it."""
    sandbox = sorted(str(p.relative_to(REPO)) for p in (REPO / "agent/sandbox").rglob("*.py"))
    assert sandbox, "agent/sandbox/ has moved: point this test at the demo's new place"
    assert [path for path in sandbox if not ignored(path, patterns)] == []


def module_level_imports(tree: ast.Module) -> list[str]:
    """Modules imported when a module loads (top-level statements, including inside top-level if/try)."""
    names: list[str] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.If | ast.Try):
            pending += [*node.body, *node.orelse, *getattr(node, "finalbody", [])]
            pending += [s for handler in getattr(node, "handlers", []) for s in handler.body]
    return names


def test_no_copied_module_imports_moto_or_needs_the_sandbox_to_load() -> None:
    """Nothing the image gets imports moto; agent.sandbox is imported only inside a function (the `sandbox`
    command), so every module in the image loads without it."""
    modules = [f for f in copied_files() if f.endswith(".py")]
    assert "agent/cli.py" in modules and not [f for f in modules if f.startswith("agent/sandbox/")]
    for path in modules:
        tree = ast.parse((REPO / path).read_text(), path)
        everywhere = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        everywhere += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
        assert not [m for m in everywhere if m.split(".")[0] == "moto"], f"{path} imports moto"
        at_load = [m for m in module_level_imports(tree) if m.startswith("agent.sandbox")]
        assert not at_load, f"{path} imports {at_load} when it loads"


def test_the_wheel_built_from_the_context_has_every_agent_module_but_no_sandbox(tmp_path: Path) -> None:
    """What the image's build stage does, without Docker: copy what the Dockerfile copies (after .dockerignore) and
    build the wheel from it with `pip wheel --no-deps --no-build-isolation`."""
    context = tmp_path / "context"
    for path in copied_files():
        (context / path).parent.mkdir(parents=True, exist_ok=True)
        (context / path).write_bytes((REPO / path).read_bytes())
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
    built = subprocess.run(
        [*command, "--wheel-dir", str(tmp_path / "wheels"), str(context)], capture_output=True, text=True, timeout=120
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "wheels").glob("ecs_health_agent-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packaged = {name for name in archive.namelist() if name.startswith("agent/")}
    sources = (p.relative_to(REPO) for p in (REPO / "agent").rglob("*.py"))
    expected = {str(p) for p in sources if p.parts[:2] != ("agent", "sandbox")}
    assert packaged == expected


# -- the RDS CA bundle ---------------------------------------------------------------------------------------

RDS_BUNDLE_URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
CHECK_SCRIPT = REPO / "docker" / "check_ca_bundle.py"


def test_the_rds_bundle_is_fetched_at_build_time_checked_and_pinnable() -> None:
    """A stage of its own ADDs AWS's global bundle (the URL a build arg), then runs the check with the pin arg."""
    assert arg_defaults()["RDS_CA_BUNDLE_URL"] == RDS_BUNDLE_URL
    stage = stage_named("rds-ca")
    args = [i.args for i in stage if i.keyword.upper() == "ARG"]
    assert "RDS_CA_BUNDLE_URL" in args and arg_defaults(stage) == {"RDS_CA_BUNDLE_SHA256": ""}, args
    (add,) = [i.args.split() for i in stage if i.keyword.upper() == "ADD"]
    assert add == ["${RDS_CA_BUNDLE_URL}", "/ca/rds-global-bundle.pem"], add
    runs = [shlex.split(i.args) for i in stage if i.keyword.upper() == "RUN"]
    assert runs == [["python", "/ca/check_ca_bundle.py", "/ca/rds-global-bundle.pem", "${RDS_CA_BUNDLE_SHA256}"]]
    assert stages().index(stage) < len(stages()) - 1, "the bundle must be fetched in a build stage"


def test_the_image_ships_the_bundle_and_points_agent_db_sslrootcert_at_it() -> None:
    """So a DSN without sslmode gets verify-full against the RDS CAs (agent/config/build.py)."""
    copies = [i.args.split() for i in final("COPY") if i.args.startswith("--from=rds-ca ")]
    assert copies == [["--from=rds-ca", "/ca/rds-global-bundle.pem", "/etc/ecs-health-agent/rds-global-bundle.pem"]]
    assert env(stages()[-1])["AGENT_DB_SSLROOTCERT"] == copies[0][-1]
    assert env(stages()[-1])["PATH"] == "/opt/venv/bin:$PATH"  # the ENV parser reads the whole instruction


def run_check(bundle: Path, *pin: str) -> subprocess.CompletedProcess[str]:
    """The build step, as the Dockerfile runs it (the script needs only the standard library)."""
    command = [sys.executable, str(CHECK_SCRIPT), str(bundle), *pin]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture(name="bundle")
def bundle_fixture(tmp_path: Path) -> Path:
    """A CA certificate made by openssl, 0600 as ADD leaves a fetched file."""
    path = tmp_path / "bundle.pem"
    key = tmp_path / "ca.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "2", "-subj", "/CN=test CA", "-keyout", str(key), "-out", str(path)],
        capture_output=True, check=True, timeout=30,
    )  # fmt: skip
    path.chmod(0o600)
    return path


def test_the_bundle_check_prints_the_digest_to_pin_and_makes_the_file_readable(bundle: Path) -> None:
    digest = hashlib.sha256(bundle.read_bytes()).hexdigest()
    unpinned = run_check(bundle, "")
    assert unpinned.returncode == 0, unpinned.stderr
    assert f"--build-arg RDS_CA_BUNDLE_SHA256={digest}" in unpinned.stdout and "1 CA certificates" in unpinned.stdout
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o444
    pinned = run_check(bundle, digest.upper())
    assert pinned.returncode == 0 and "matches the pin" in pinned.stdout, pinned.stderr


def test_the_bundle_check_fails_the_build_on_a_wrong_pin_or_a_file_that_is_no_bundle(
    bundle: Path, tmp_path: Path
) -> None:
    wrong = run_check(bundle, "0" * 64)
    assert wrong.returncode == 1 and "not the pinned" in wrong.stderr and "substituted" in wrong.stderr
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o600  # nothing is installed from a failed check
    page = tmp_path / "error.html"
    page.write_text("<html><body>503 Service Unavailable</body></html>")
    html = run_check(page, "")
    assert html.returncode == 1 and "not a PEM bundle of CA certificates" in html.stderr, html.stderr
    missing = run_check(tmp_path / "absent.pem", "")
    assert missing.returncode == 1 and "absent.pem" in missing.stderr
