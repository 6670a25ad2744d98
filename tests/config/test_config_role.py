"""AGENT_DB_EXPECT_ROLE and `expect_role`: writer, reader or any (the default), a connection's own over the global,
and a clear error naming the field for anything else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.config.load import load_config
from agent.config.models import AgentConfig, ConfigError, ExpectRole
from agent.config.reference import environment_help

DSN = "postgresql://app:pw-Kq7-role@db.internal:5432/app"
TWO = """
database:
  connections:
    writer:
      dsn: postgresql://app:pw-Kq7-role@writer.internal:5432/app
      expect_role: writer
    reports:
      dsn: postgresql://app:pw-Kq7-role@reader.internal:5432/app
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("AGENT_") or key in ("AWS_REGION", "AWS_DEFAULT_REGION"):
            monkeypatch.delenv(key)


def load(monkeypatch: pytest.MonkeyPatch, path: Path | None = None, **env: str) -> AgentConfig:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return load_config(path)


def yaml_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("given", "role"),
    [(None, ExpectRole.ANY), (" Writer ", ExpectRole.WRITER), ("reader", ExpectRole.READER), ("any", ExpectRole.ANY)],
)
def test_the_environment_variable_sets_the_role(
    monkeypatch: pytest.MonkeyPatch, given: str | None, role: ExpectRole
) -> None:
    env = {"AGENT_DB_DSN": DSN} | ({"AGENT_DB_EXPECT_ROLE": given} if given is not None else {})
    (target,) = load(monkeypatch, None, **env).targets
    assert target.expect_role is role


def test_a_connection_s_own_role_wins_and_the_others_take_the_global(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = load(monkeypatch, yaml_file(tmp_path, TWO), AGENT_DB_EXPECT_ROLE="reader")
    assert {t.name: t.expect_role for t in config.targets} == {
        "writer": ExpectRole.WRITER,
        "reports": ExpectRole.READER,
    }
    monkeypatch.delenv("AGENT_DB_EXPECT_ROLE")
    config = load(monkeypatch, yaml_file(tmp_path, TWO))
    assert {t.name: t.expect_role for t in config.targets} == {"writer": ExpectRole.WRITER, "reports": ExpectRole.ANY}


def test_an_unknown_role_is_refused_naming_the_field_and_the_choices(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(monkeypatch, AGENT_DB_DSN=DSN, AGENT_DB_EXPECT_ROLE="primary")
    assert caught.value.problems == [
        "AGENT_DB_EXPECT_ROLE: 'primary' is not a role: expected writer (the login must reach a server that accepts"
        " writes), reader (a read-only one) or any"
    ]
    for key in ("AGENT_DB_DSN", "AGENT_DB_EXPECT_ROLE"):
        monkeypatch.delenv(key)
    with pytest.raises(ConfigError) as caught:
        load(monkeypatch, yaml_file(tmp_path, TWO.replace("expect_role: writer", "expect_role: wirter")))
    (problem,) = caught.value.problems
    assert problem.startswith("database.connections.writer.expect_role: 'wirter' is not a role (did you mean writer?)")


def test_help_lists_the_variable_with_its_default() -> None:
    for command in ("serve", "check"):
        assert "  AGENT_DB_EXPECT_ROLE [any]\n      writer, reader or any" in environment_help(command)
