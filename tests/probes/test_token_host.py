"""AGENT_DB_IAM_HOST (issue 14, item 8): the token is signed for the RDS endpoint the user names, not for the
tunnel, IP address or CNAME the DSN connects to; without it, a host that is not an RDS endpoint gets a note before
the login fails, and the login's auth hint names the cause; bad values are configuration errors."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiobotocore.session  # noqa: F401 - imported here, not first inside a running loop (the blocking guard)
import pytest

from agent.aws.clients import AwsClients
from agent.config.load import load_config
from agent.config.models import AgentConfig, ConfigError
from agent.probes.base import TargetState
from agent.probes.db import DatabaseProbe
from agent.probes.runner import run_probe
from agent.probes.token import TokenProbe
from agent.sandbox.aws import Keys
from agent.shared.reasons import Failure, Reason
from tests.support.aws import PROBE_TIMEOUT, RDS_HOST, REGION, AwsEnv, make_target

KEYS = Keys("AKIATOKENHOST0000000", "token-host-secret-key-0000000000000000")
OTHER_REGION_HOST = "orders.c9akciq32.us-east-2.rds.amazonaws.com"


async def signed(aws: AwsClients, **overrides: object) -> tuple[str, dict[str, str], str]:
    """(host:port the token is signed for, its query, the probe's note) for an IAM target."""
    state = TargetState()
    result = await run_probe(TokenProbe(make_target(iam_auth=True, **overrides), state, aws), PROBE_TIMEOUT)
    assert result.ok and state.token is not None, result.message
    parts = urlsplit("https://" + state.token.get_secret_value())  # RDS tokens are presigned URLs without a scheme
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    return parts.netloc, query, result.message


async def test_the_token_is_signed_for_the_override_host_and_port(aws_env: AwsEnv, aws: AwsClients) -> None:
    """A tunnel on localhost:15432 to RDS: the presigned URL's host is the RDS endpoint and its port."""
    aws_env.keys(KEYS)
    netloc, query, note = await signed(aws, host="localhost", port=15432, iam_host=RDS_HOST, iam_port=5432)
    assert netloc == f"{RDS_HOST}:5432"
    assert query["Action"] == "connect" and query["DBUser"] == "app"
    assert query["X-Amz-Credential"].endswith(f"/{REGION}/rds-db/aws4_request")
    assert note == "", "an override says the user knows: no note"


async def test_without_a_port_the_connections_port_is_signed(aws_env: AwsEnv, aws: AwsClients) -> None:
    aws_env.keys(KEYS)
    netloc, _, _ = await signed(aws, host="10.0.3.7", port=5433, iam_host=RDS_HOST)
    assert netloc == f"{RDS_HOST}:5433"


async def test_the_region_comes_from_the_override_host(aws_env: AwsEnv, aws: AwsClients) -> None:
    """The override's region is the one the token must carry (a DSN host of 127.0.0.1 has none)."""
    aws_env.keys(KEYS)
    state = TargetState()
    target = make_target(iam_auth=True, host="127.0.0.1", iam_host=OTHER_REGION_HOST, region="us-east-2")
    result = await run_probe(TokenProbe(target, state, aws), PROBE_TIMEOUT)
    assert result.ok and result.details["region"] == "us-east-2"
    assert result.details["signed_for"] == f"{OTHER_REGION_HOST}:5432"
    mismatch = make_target(iam_auth=True, host="127.0.0.1", iam_host=OTHER_REGION_HOST, configured_region=REGION)
    failed = await run_probe(TokenProbe(mismatch, TargetState(), aws), PROBE_TIMEOUT)
    assert failed.code == "token:region_mismatch" and OTHER_REGION_HOST in failed.message


@pytest.mark.parametrize(
    ("host", "words"),
    [
        ("localhost", "a loopback name (a tunnel or a port-forward)"),
        ("127.0.0.1", "an IP address"),
        ("10.0.3.7", "an IP address"),
        ("db.internal.example", "not an RDS endpoint name"),
    ],
)
async def test_a_host_that_is_not_an_rds_endpoint_gets_a_note_not_a_failure(
    aws_env: AwsEnv, aws: AwsClients, host: str, words: str
) -> None:
    """The token probe passes (a CNAME may be right) and says why the login may fail, naming the fix."""
    aws_env.keys(KEYS)
    netloc, _, note = await signed(aws, host=host)
    assert netloc == f"{host}:5432"
    assert words in note and "AGENT_DB_IAM_HOST" in note and f"signed for {host}" in note


async def test_an_rds_endpoint_gets_no_note(aws_env: AwsEnv, aws: AwsClients) -> None:
    aws_env.keys(KEYS)
    for host in (RDS_HOST, "orders.proxy-c9akciq32.eu-west-1.rds.amazonaws.com"):
        assert (await signed(aws, host=host))[2] == ""


def test_the_rejected_login_hint_names_the_unsigned_host_first() -> None:
    """RDS rejects a token for the wrong name like a bad one: the hint starts with the name, then the checklist."""
    rejected = Failure(Reason.AUTH, "pg:28000:pam", "PAM (RDS IAM) login rejected")
    hint = DatabaseProbe(make_target(iam_auth=True, host="localhost"), TargetState(), timeout=2.0).hint(rejected)
    assert hint.startswith("The IAM token is signed for localhost, which is a loopback name") and "rds_iam" in hint
    overridden = make_target(iam_auth=True, host="localhost", iam_host=RDS_HOST)
    assert "signed for localhost" not in DatabaseProbe(overridden, TargetState(), timeout=2.0).hint(rejected)


# -- configuration ----------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("AGENT_") or key in ("AWS_REGION", "AWS_DEFAULT_REGION"):
            monkeypatch.delenv(key)


def load(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], path: Path | None = None) -> AgentConfig:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return load_config(path)


IAM = {"AGENT_DB_DSN": "postgresql://app@localhost:15432/orders", "AGENT_DB_IAM_AUTH": "true"}


def test_the_variable_sets_host_port_and_region(monkeypatch: pytest.MonkeyPatch) -> None:
    (target,) = load(monkeypatch, {**IAM, "AGENT_DB_IAM_HOST": f" {RDS_HOST}:5432 "}).targets
    assert (target.host, target.port, target.token_host, target.token_port) == ("localhost", 15432, RDS_HOST, 5432)
    assert target.region == REGION  # from the endpoint name: localhost names no region


def test_the_yaml_key_sets_it_per_connection(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(
        "database:\n  connections:\n    orders:\n      dsn: postgresql://app@127.0.0.1:15432/orders\n"
        f"      aws_iam_auth: {{enabled: true, host: {RDS_HOST}}}\n"
    )
    (target,) = load(monkeypatch, {}, path).targets
    assert (target.token_host, target.token_port, target.region) == (RDS_HOST, 15432, REGION)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"AGENT_DB_IAM_HOST": "127.0.0.1"}, "AGENT_DB_IAM_HOST: '127.0.0.1' cannot be an RDS endpoint name"),
        ({"AGENT_DB_IAM_HOST": "localhost:5432"}, "AGENT_DB_IAM_HOST: 'localhost' cannot be an RDS endpoint name"),
        ({"AGENT_DB_IAM_HOST": "db!.example"}, "AGENT_DB_IAM_HOST: 'db!.example' is not a host name"),
        ({"AGENT_DB_IAM_HOST": f"{RDS_HOST}:0"}, "AGENT_DB_IAM_HOST: the port '0' is not a number from 1 to 65535"),
        ({"AGENT_DB_IAM_HOST": f"{RDS_HOST}:x"}, "AGENT_DB_IAM_HOST: the port 'x' is not a number from 1 to 65535"),
        ({"AGENT_DB_IAM_HOST": " "}, "AGENT_DB_IAM_HOST: the host is empty"),
        (
            {"AGENT_DB_IAM_HOST": RDS_HOST, "AGENT_DB_IAM_AUTH": "false", "AGENT_DB_PASSWORD": "x"},
            "AGENT_DB_IAM_HOST: is set, but IAM auth is not enabled",
        ),
    ],
)
def test_bad_values_are_configuration_errors(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(monkeypatch, {**IAM, **env})
    text = "\n".join(caught.value.problems)
    assert expected in text, text
    assert "expected the RDS endpoint" in text or "not enabled" in text


def test_the_variable_with_config_connections_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("database:\n  connections:\n    orders:\n      dsn: postgresql://app:pw@127.0.0.1/orders\n")
    with pytest.raises(ConfigError) as caught:
        load(monkeypatch, {"AGENT_DB_IAM_HOST": RDS_HOST}, path)
    assert "AGENT_DB_IAM_HOST: applies to AGENT_DB_DSN" in "\n".join(caught.value.problems)
