"""`COMMAND --help` lists the environment variables the command reads, with defaults taken from the models."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from agent.config.inputs import EnvSettings
from agent.config.load import STANDARD_VARIABLES
from agent.config.models import AgentConfig
from agent.config.reference import AGENT_VARIABLES, CHECK, STANDARD, environment_help
from tests.support.agent_process import run_agent


def defaults(text: str) -> dict[str, str]:
    """`NAME [default]` lines of a help text."""
    return dict(re.findall(r"^  (AGENT_[A-Z_]+) \[([^\]]*)\]$", text, re.MULTILINE))


def test_every_agent_variable_has_a_line_and_no_line_is_stale() -> None:
    assert set(AGENT_VARIABLES) == set(EnvSettings.model_fields)
    assert set(CHECK) <= set(AGENT_VARIABLES)
    assert set(STANDARD) == set(STANDARD_VARIABLES)


def test_defaults_come_from_the_configuration_model() -> None:
    shown = defaults(environment_help("serve"))
    assert len(shown) == len(EnvSettings.model_fields)
    assert shown["AGENT_FAILURE_THRESHOLD"] == str(AgentConfig.model_fields["failure_threshold"].default) == "3"
    assert shown["AGENT_TIMEOUT_SECONDS"] == "5" and shown["AGENT_PORT"] == "8099"
    assert shown["AGENT_READINESS_POLICY"] == "gate" and shown["AGENT_CLOUDWATCH_EMF"] == "false"
    for name, field in AgentConfig.model_fields.items():
        variable = f"AGENT_{name.upper()}"
        if variable in shown and not AGENT_VARIABLES[name][1]:
            assert shown[variable] == as_written(field.default), variable


def as_written(value: object) -> str:
    """A default as a user would write it in the variable."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(getattr(value, "value", value))


@pytest.mark.parametrize(
    ("command", "present", "absent"),
    [
        ("serve", ["AGENT_PORT [8099]", "AGENT_INTERVAL_SECONDS [10]", "AWS_WEB_IDENTITY_TOKEN_FILE"], []),
        ("check", ["AGENT_DB_DSN [required, or --config]", "AGENT_TIMEOUT_SECONDS [5]", "NO_PROXY"], ["AGENT_PORT"]),
        ("healthcheck", ["AGENT_PORT [8099]"], ["AGENT_DB_DSN", "AWS_"]),
        ("sandbox", ["AGENT_DB_DSN [unset]"], ["AGENT_PORT"]),
    ],
)
def test_each_command_s_help_lists_what_it_reads(command: str, present: list[str], absent: list[str]) -> None:
    proc = run_agent(command, "--help", env={})
    assert (proc.returncode, proc.stderr) == (0, "")
    environment = proc.stdout.split("environment variables [default]:", 1)[1]
    for text in present:
        assert text in environment, text
    for text in absent:
        assert text not in environment, text


def test_the_healthcheck_path_stays_import_light_with_its_help() -> None:
    """Building the parser (help text included) loads no pydantic on `healthcheck`, run or asked for help."""
    code = (
        "import sys, contextlib, io\nfrom agent.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):\n"
        "    main(['healthcheck', '--help'])\n"
        "print('AGENT_PORT [8099]' in out.getvalue(), 'pydantic' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.split() == ["True", "False"]
