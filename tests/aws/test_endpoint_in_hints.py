"""A hint names the AWS endpoint the agent actually called, never one recomputed from the region.

With AWS_STS_REGIONAL_ENDPOINTS=legacy botocore sends eu-west-1's STS calls to the global sts.amazonaws.com; the
hint used to name sts.eu-west-1.amazonaws.com. The real CLI runs `check`; the tests' resolver sends the AWS names
to loopback, where nothing listens on 443, so the connection is refused.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.agent_process import run_agent
from tests.support.aws import REGION, AwsEnv
from tests.support.resolver.sitecustomize import HOSTS_VARIABLE

NAMES = ("sts.amazonaws.com", f"sts.{REGION}.amazonaws.com", f"secretsmanager.{REGION}.amazonaws.com")


async def check(aws_env: AwsEnv, tmp_path: Path, sts_endpoints: str) -> dict[str, Any]:
    hosts = tmp_path / "hosts.json"
    await asyncio.to_thread(hosts.write_text, json.dumps(dict.fromkeys(NAMES, "127.0.0.1")))
    env = {
        HOSTS_VARIABLE: str(hosts),
        "AWS_ACCESS_KEY_ID": "AKIAENDPOINTHINT0000",
        "AWS_SECRET_ACCESS_KEY": "endpoint-hint-secret-0000000000000000000",
        "AWS_STS_REGIONAL_ENDPOINTS": sts_endpoints,
        "AGENT_AWS_REGION": REGION,
        "AGENT_DB_DSN": "postgresql://app@127.0.0.1:5432/orders",
        "AGENT_DB_SECRET_ID": "prod/orders",
        "AGENT_TIMEOUT_SECONDS": "2",
    }
    proc = await asyncio.to_thread(run_agent, "check", "--json", env=env)
    assert proc.returncode == 1, proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    (found,) = [p for p in report["probes"] if p["probe"] == "credentials"]
    return dict(found)


@pytest.mark.parametrize(
    ("setting", "called", "not_called"),
    [
        ("legacy", "sts.amazonaws.com", f"sts.{REGION}.amazonaws.com"),
        ("regional", f"sts.{REGION}.amazonaws.com", "sts.amazonaws.com"),
    ],
)
async def test_the_sts_hint_names_the_endpoint_called(
    aws_env: AwsEnv, tmp_path: Path, setting: str, called: str, not_called: str
) -> None:
    found = await check(aws_env, tmp_path, setting)
    assert (found["reason"], found["code"]) == ("network", "sts:refused")
    assert found["hint"].startswith(f"cannot reach STS at {called}: allow outbound HTTPS (443) to {called} ")
    assert f" {not_called}" not in found["hint"]
    assert f"https://{called}" in found["message"]
