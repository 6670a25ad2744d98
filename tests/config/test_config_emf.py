"""Configuration of the CloudWatch EMF output: AGENT_CLOUDWATCH_*, and ECS_CONTAINER_METADATA_URI_V4."""

from __future__ import annotations

import os

import pytest

from agent.config.load import load_config
from agent.config.models import AgentConfig, ConfigError

BASE = {"AGENT_DB_DSN": "postgresql://app@db.internal:5432/orders", "AGENT_DB_PASSWORD": "Zq8-emf-config-test"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts without AGENT_* variables or an ECS metadata endpoint."""
    for key in list(os.environ):
        if key.startswith("AGENT_") or key.startswith("ECS_"):
            monkeypatch.delenv(key)


def load(monkeypatch: pytest.MonkeyPatch, **env: str) -> AgentConfig:
    for key, value in {**BASE, **env}.items():
        monkeypatch.setenv(key, value)
    return load_config()


def problems(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(monkeypatch, **env)
    return "\n".join(caught.value.problems)


def test_emf_is_off_by_default_with_the_documented_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load(monkeypatch)
    assert (config.cloudwatch_emf, config.cloudwatch_namespace, config.ecs_metadata_uri) == (
        False,
        "ECSHealthAgent",
        None,
    )


@pytest.mark.parametrize("text", ["true", "1", "yes", "TRUE"])
def test_emf_can_be_switched_on(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    assert load(monkeypatch, AGENT_CLOUDWATCH_EMF=text).cloudwatch_emf is True


def test_emf_flag_that_is_not_a_boolean_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    assert problems(monkeypatch, AGENT_CLOUDWATCH_EMF="sometimes") == "AGENT_CLOUDWATCH_EMF: expected true or false"


@pytest.mark.parametrize("namespace", ["MyApp/DbHealth", "team.orders-api_v2", "a", "Prod #1: db", "x" * 255])
def test_valid_namespaces_are_kept(monkeypatch: pytest.MonkeyPatch, namespace: str) -> None:
    assert load(monkeypatch, AGENT_CLOUDWATCH_NAMESPACE=namespace).cloudwatch_namespace == namespace


@pytest.mark.parametrize(
    "namespace",
    ["", ":leading-colon", "AWS/ECS", "x" * 256, "tab\there", "caf\u00e9", "semi;colon", "new\nline"],
)
def test_invalid_namespaces_are_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch, namespace: str) -> None:
    """CloudWatch's rules: 1-255 of A-Z a-z 0-9 . - _ / # : and space, not ':' first, "AWS/" is reserved."""
    text = problems(monkeypatch, AGENT_CLOUDWATCH_NAMESPACE=namespace)
    assert text.startswith("AGENT_CLOUDWATCH_NAMESPACE: ")
    assert "not a CloudWatch namespace" in text and "e.g. ECSHealthAgent" in text


def test_metadata_uri_is_read_from_the_variable_ecs_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    uri = "http://169.254.170.2/v4/0f4c8a2e-b1d6-4a5f-9e0b-3c2d1e0f9a8b"
    assert load(monkeypatch, ECS_CONTAINER_METADATA_URI_V4=f" {uri} ").ecs_metadata_uri == uri


def test_empty_metadata_uri_counts_as_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load(monkeypatch, ECS_CONTAINER_METADATA_URI_V4="").ecs_metadata_uri is None


def test_namespace_problem_is_listed_with_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every problem at once: a bad namespace does not hide a bad port."""
    text = problems(monkeypatch, AGENT_CLOUDWATCH_NAMESPACE="AWS/Mine", AGENT_PORT="99999")
    assert "AGENT_CLOUDWATCH_NAMESPACE" in text and "AGENT_PORT" in text
