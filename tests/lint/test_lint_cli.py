"""`ecs-health-agent lint`: the example files pass, the incident's task definition fails on the right field, exit
codes 0/1/2, --json, and the flagged value never appears in any output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.cli import main
from tests.lint.support import ECS, lint_json, write
from tests.support.agent_process import run_agent

INCIDENT_PASSWORD = "Gr3at-Lit3ral-pw"  # the incident's shape: a literal DB_PASSWORD in the backend's environment
INCIDENT = {
    "family": "literattus-backend",
    "containerDefinitions": [
        {
            "name": "literattus-backend",
            "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/literattus-backend:8",
            "essential": True,
            "environment": [
                {"name": "DB_HOST", "value": "literattus.c9akciq32.us-east-1.rds.amazonaws.com"},
                {"name": "DB_USER", "value": "admin"},
                {"name": "DB_PASSWORD", "value": INCIDENT_PASSWORD},
                {"name": "DB_NAME", "value": "literattus"},
            ],
        }
    ],
}


@pytest.mark.parametrize("name", ["task-definition.json", "cloudformation.yaml"])
def test_every_task_definition_in_ecs_passes_clean(capsys: pytest.CaptureFixture[str], name: str) -> None:
    """The files a team copies have nothing to flag: exit 0, no findings."""
    code, report = lint_json(capsys, ECS / name)
    assert (code, report["findings"], report["clean"]) == (0, [], True)


def test_the_incidents_task_definition_is_flagged_on_its_field_without_printing_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A literal DB_PASSWORD: exit 1, one finding naming the container and the field; the value is never shown."""
    path = write(tmp_path, INCIDENT)
    assert main(["lint", str(path)]) == 1
    out, err = capsys.readouterr()
    assert INCIDENT_PASSWORD not in out + err
    first, summary = out.splitlines()
    assert first.startswith(f"{path}: containerDefinitions[0].environment[DB_PASSWORD] (container literattus-backend):")
    assert first.endswith("[secret-literal]") and summary == "1 finding in 1 file"


def test_the_command_runs_as_a_process_with_the_documented_exit_codes(tmp_path: Path) -> None:
    """`python -m agent lint`: 0 for ecs/, 1 for the incident, 2 for a file that is not JSON (one line on stderr,
    no traceback)."""
    clean = run_agent("lint", "ecs/task-definition.json", "ecs/cloudformation.yaml", env={})
    assert (clean.returncode, clean.stdout, clean.stderr) == (0, "2 files: clean\n", "")
    flagged = run_agent("lint", str(write(tmp_path, INCIDENT)), env={})
    assert flagged.returncode == 1 and "[secret-literal]" in flagged.stdout and INCIDENT_PASSWORD not in flagged.stdout
    broken = tmp_path / "broken.json"
    broken.write_text('{"containerDefinitions": [' + f'"{INCIDENT_PASSWORD}",,')
    unreadable = run_agent("lint", str(broken), env={})
    assert unreadable.returncode == 2 and "Traceback" not in unreadable.stderr
    assert unreadable.stderr == f"ecs-health-agent lint: {broken}: invalid JSON: Expecting value at line 1 column 46\n"


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("{not json", "invalid JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
        ('{"family": "x"}', "not a task definition: expected register-task-definition JSON (containerDefinitions)"),
        ("[1, 2]", "not a task definition"),
    ],
)
def test_unreadable_json_exits_2_naming_the_file_and_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, error: str
) -> None:
    path = tmp_path / "task.json"
    path.write_text(content)
    assert main(["lint", str(path)]) == 2
    out, err = capsys.readouterr()
    assert err.startswith(f"ecs-health-agent lint: {path}: {error}") and err.count("\n") == 1
    assert out == "0 files: clean; 1 not read (named on stderr)\n"


def test_invalid_yaml_names_the_position_never_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """PyYAML's own message quotes the offending line, which may hold a password: only the position is shown."""
    path = tmp_path / "template.yaml"
    path.write_text(f"Resources:\n  T: {{Type: AWS::ECS::TaskDefinition, x: [{INCIDENT_PASSWORD}\n")
    assert main(["lint", str(path)]) == 2
    err = capsys.readouterr().err
    assert INCIDENT_PASSWORD not in err and "invalid YAML: " in err and " at line 3 column 1" in err


def test_missing_and_binary_files_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    assert main(["lint", str(tmp_path / "absent.json"), str(tmp_path / "binary.json")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"ecs-health-agent lint: {tmp_path / 'absent.json'}: cannot read: No such file or directory",
        f"ecs-health-agent lint: {tmp_path / 'binary.json'}: not UTF-8 text",
    ]


def test_an_unreadable_file_does_not_stop_the_others_and_json_lists_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json for CI: the findings of the readable files, the unreadable ones with their error; exit 2 wins."""
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    code, report = lint_json(capsys, write(tmp_path, INCIDENT), broken)
    assert code == 2 and report["clean"] is False
    assert [f["field"] for f in report["findings"]] == ["containerDefinitions[0].environment[DB_PASSWORD]"]
    assert report["unreadable"] == [
        f"{broken}: invalid JSON: Expecting property name enclosed in double quotes at line 1 column 2"
    ]
    assert report["files"] == [str(tmp_path / "task.json")]


def test_describe_task_definition_output_is_read_as_the_task_definition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`aws ecs describe-task-definition` wraps it in {"taskDefinition": ...}; fields are named under that key."""
    path = write(tmp_path, {"taskDefinition": INCIDENT, "tags": []})
    code, report = lint_json(capsys, path)
    assert code == 1
    assert [f["field"] for f in report["findings"]] == [
        "taskDefinition.containerDefinitions[0].environment[DB_PASSWORD]"
    ]
    assert json.dumps(report).count(INCIDENT_PASSWORD) == 0
