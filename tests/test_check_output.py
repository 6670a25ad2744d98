"""`ecs-health-agent check` as a tired engineer reads it: the summary counts skipped checks apart from failed ones,
and stderr carries no botocore chatter or traceback (the checklist already says what failed, why, and what next).

The real CLI in a process; AWS calls go to a loopback port where nothing listens.
"""

from __future__ import annotations

import asyncio
import json
import subprocess

from agent.outputs.report import summary
from agent.probes.base import ProbeResult
from agent.shared.reasons import NOT_RUN_CODE, Reason
from tests.support.agent_process import run_agent
from tests.support.aws import REGION, AwsEnv
from tests.support.ports import refused_port

KEYS = {"AWS_ACCESS_KEY_ID": "AKIACHECKOUTPUT00000", "AWS_SECRET_ACCESS_KEY": "check-output-secret-000000000000000000"}


def agent_env(**extra: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{refused_port()}",
        "AGENT_AWS_REGION": REGION,
        "AGENT_DB_DSN": "postgresql://app@127.0.0.1:5432/orders",
        "AGENT_DB_SECRET_ID": "prod/orders",
        "AGENT_TIMEOUT_SECONDS": "2",
        **extra,
    }


async def check(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(run_agent, "check", *args, env=env)


async def test_summary_says_one_failed_and_two_not_run(aws_env: AwsEnv) -> None:
    proc = await check(agent_env(**KEYS))
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0] == "ecs-health-agent check: 1 failed, 2 not run"
    assert lines[2].startswith("  FAIL  credentials [aws]") and "network (sts:refused" in lines[2]
    skipped = [line for line in lines if line.startswith("  SKIP  ")]
    assert [line.split()[1] for line in skipped] == ["secret", "db"]
    assert "not run: the credentials check (aws) failed first" in skipped[0]
    assert proc.stderr == ""  # no "Found credentials in environment variables." from botocore


async def test_a_chain_failure_leaves_no_traceback_on_stderr(aws_env: AwsEnv) -> None:
    """EKS web identity whose token is not mounted: botocore logs a warning with a traceback on each failed refresh
    of the credentials, which the checklist already explains."""
    token = aws_env.tmp_path / "no-such-token"
    env = agent_env(AWS_WEB_IDENTITY_TOKEN_FILE=str(token), AWS_ROLE_ARN="arn:aws:iam::123456789012:role/orders-app")
    proc = await check(env, "--json")
    report = json.loads(proc.stdout)
    assert [(p["probe"], p["code"]) for p in report["probes"]] == [
        ("credentials", "web_identity:token_file_missing"),
        ("secret", "not_run"),
        ("db", "not_run"),
    ]
    assert proc.stderr == ""


async def test_at_debug_botocore_s_lines_come_as_the_agent_s_json_lines(aws_env: AwsEnv) -> None:
    proc = await check(agent_env(AGENT_LOG_LEVEL="debug", **KEYS))
    records = [json.loads(line) for line in proc.stderr.splitlines()]
    found = [r for r in records if r["logger"].startswith(("botocore", "aiobotocore"))]
    assert any(r["message"] == "Found credentials in environment variables." for r in found)
    assert all(r["level"] in {"info", "warning", "error"} for r in found)  # never botocore's debug (bodies)


def test_the_summary_counts_in_words_a_person_reads() -> None:
    """`all 3 checks passed`; one is `the 1 check passed`, not `all 1 checks`; failures and skips counted apart."""
    ok = ProbeResult("db", "default", True, None, "ok", "", "", 1.0)
    failed = ProbeResult("db", "default", False, Reason.AUTH, "pg:28P01", "", "", 1.0)
    skipped = ProbeResult("db", "default", False, Reason.AUTH, NOT_RUN_CODE, "", "", 0.0)
    assert summary([ok, ok, ok]) == "all 3 checks passed"
    assert summary([ok]) == "the 1 check passed"
    assert summary([failed, skipped, ok]) == "1 failed, 1 not run, 1 passed"
