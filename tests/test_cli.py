"""`ecs-health-agent --version`, run as a process: the version comes from one place, the package metadata."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tomllib
from pathlib import Path

import agent
from tests.support.agent_process import REPO, agent_env, run_agent

COMMAND = Path(sys.executable).parent / "ecs-health-agent"  # the console script of the installed distribution


def installed_version() -> str:
    return importlib.metadata.version("ecs-health-agent")


def test_version_flag_prints_the_installed_distributions_version_and_exits_0() -> None:
    """`python -m agent --version` prints `ecs-health-agent X.Y.Z` on stdout and nothing on stderr."""
    proc = run_agent("--version", env={})
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"ecs-health-agent {installed_version()}\n", "")


def test_console_script_prints_the_same_version() -> None:
    """The `ecs-health-agent` entry point that pip installs answers --version the same way."""
    proc = subprocess.run(
        [str(COMMAND), "--version"], env=agent_env({}), capture_output=True, text=True, timeout=60, check=False
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"ecs-health-agent {installed_version()}\n", "")


def test_metadata_version_is_pyprojects_version() -> None:
    """pyproject.toml's `version` is the one source: the installed metadata and `agent.__version__` repeat it."""
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert installed_version() == declared
    assert agent.__version__ == declared


def test_source_tree_without_metadata_reports_an_unknown_version(tmp_path: Path) -> None:
    """Run from a copy of the package that was never installed, `__version__` is `0+unknown`, not an error."""
    (tmp_path / "agent").mkdir()
    (tmp_path / "agent" / "__init__.py").write_text((REPO / "agent" / "__init__.py").read_text())
    # -S: no site-packages, so no installed ecs-health-agent metadata; -P: not the current directory's agent/.
    code = "import agent; print(agent.__version__)"
    proc = subprocess.run(
        [sys.executable, "-S", "-P", "-c", code],
        env={"PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert proc.stdout == "0+unknown\n"
