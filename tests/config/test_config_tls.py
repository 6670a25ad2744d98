"""sslmode defaults and the TLS rule of IAM auth: a token is never configured to travel without TLS, and a CA bundle
(AGENT_DB_SSLROOTCERT, which the image sets to the RDS bundle, or ?sslrootcert=) makes verify-full the default."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.config.dsn import SslMode
from agent.config.load import load_config
from agent.config.models import AgentConfig, ConfigError, TargetConfig
from tests.support.agent_process import run_agent

RDS_HOST = "mydb.abc123xyz.eu-west-1.rds.amazonaws.com"
BUNDLE = "/etc/ecs-health-agent/rds-global-bundle.pem"
PASSWORD = "Zq8-wrong-horse-battery"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("AGENT_") or key in ("AWS_REGION", "AWS_DEFAULT_REGION"):
            monkeypatch.delenv(key)


def load(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> AgentConfig:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return load_config(None)


def target(monkeypatch: pytest.MonkeyPatch, query: str = "", iam: bool = False, **env: str) -> TargetConfig:
    for key in ("AGENT_DB_IAM_AUTH", "AGENT_DB_PASSWORD"):  # from an earlier call of the same test
        monkeypatch.delenv(key, raising=False)
    credentials = {"AGENT_DB_IAM_AUTH": "true"} if iam else {"AGENT_DB_PASSWORD": PASSWORD}
    dsn = {"AGENT_DB_DSN": f"postgresql://app@{RDS_HOST}/d{query}"}
    (only,) = load(monkeypatch, dsn | credentials | env).targets
    return only


@pytest.mark.parametrize("mode", ["disable", "prefer"])
@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_iam_below_require_is_refused_naming_the_risk(monkeypatch: pytest.MonkeyPatch, mode: str, engine: str) -> None:
    monkeypatch.setenv("AGENT_DB_DSN", f"{engine}://app@{RDS_HOST}/d?sslmode={mode}")
    monkeypatch.setenv("AGENT_DB_IAM_AUTH", "true")
    with pytest.raises(ConfigError) as caught:
        load_config(None)
    (problem,) = caught.value.problems
    assert problem.startswith(f"AGENT_DB_DSN: IAM auth needs TLS, but the DSN says sslmode={mode}")
    assert "cleartext" in problem and "sslmode=verify-full" in problem and "sslmode=require" in problem


def test_iam_below_require_in_the_config_file_names_the_connection(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(
        "database:\n  connections:\n    writer:\n"
        f"      dsn: postgresql://app@{RDS_HOST}/d?sslmode=prefer\n      aws_iam_auth: {{enabled: true}}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems[0].startswith("database.connections.writer.dsn: IAM auth needs TLS")


@pytest.mark.parametrize("mode", ["require", "verify-ca", "verify-full"])
def test_iam_with_tls_required_is_accepted(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    assert target(monkeypatch, f"?sslmode={mode}", iam=True).sslmode == SslMode(mode)


def test_defaults_without_a_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    """libpq's prefer for a password; require for IAM (nothing to verify against, but never plaintext)."""
    assert target(monkeypatch).sslmode is SslMode.PREFER
    assert target(monkeypatch, iam=True).sslmode is SslMode.REQUIRE


@pytest.mark.parametrize("iam", [False, True])
def test_a_ca_bundle_makes_verify_full_the_default(monkeypatch: pytest.MonkeyPatch, iam: bool) -> None:
    from_env = target(monkeypatch, iam=iam, AGENT_DB_SSLROOTCERT=BUNDLE)
    assert (from_env.sslmode, from_env.sslrootcert) == (SslMode.VERIFY_FULL, BUNDLE)
    monkeypatch.delenv("AGENT_DB_SSLROOTCERT")
    from_dsn = target(monkeypatch, "?sslrootcert=/ca/mine.pem", iam=iam)
    assert (from_dsn.sslmode, from_dsn.sslrootcert) == (SslMode.VERIFY_FULL, "/ca/mine.pem")


def test_an_explicit_sslmode_is_kept_with_a_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    """require stays require (it verifies the chain against the bundle, as libpq's does); prefer stays prefer."""
    for mode in ("require", "prefer", "disable"):
        assert target(monkeypatch, f"?sslmode={mode}", AGENT_DB_SSLROOTCERT=BUNDLE).sslmode is SslMode(mode)


def test_the_dsns_sslrootcert_wins_over_the_environments(monkeypatch: pytest.MonkeyPatch) -> None:
    """The DSN names this database's CA; AGENT_DB_SSLROOTCERT is the process-wide default (the image's bundle)."""
    assert target(monkeypatch, "?sslrootcert=/ca/mine.pem", AGENT_DB_SSLROOTCERT=BUNDLE).sslrootcert == "/ca/mine.pem"


def test_an_empty_ca_bundle_variable_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    """How to opt out of the image's bundle: AGENT_DB_SSLROOTCERT= (empty)."""
    unset = target(monkeypatch, AGENT_DB_SSLROOTCERT="")
    assert (unset.sslmode, unset.sslrootcert) == (SslMode.PREFER, None)


def test_iam_with_prefer_exits_2_with_the_message_and_no_traceback() -> None:
    env = {"AGENT_DB_DSN": f"postgresql://app@{RDS_HOST}/d?sslmode=prefer", "AGENT_DB_IAM_AUTH": "true"}
    proc = run_agent("check", env=env, timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert "IAM auth needs TLS, but the DSN says sslmode=prefer" in proc.stderr
    assert "Traceback" not in proc.stderr
