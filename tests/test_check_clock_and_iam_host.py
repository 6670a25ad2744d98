"""`ecs-health-agent check` as a person reads it (the checklist), for issue 14's items 6-8: a clock 6 and 2 minutes
off AWS's (an STS stand-in's Date header), a token signed for AGENT_DB_IAM_HOST, the note for a tunnel on localhost
before the real login fails, and an RDS Proxy stand-in's TLS answer."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support.agent_process import run_agent
from tests.support.aws import RDS_HOST, AwsEnv
from tests.support.databases import PgAdmin, random_password
from tests.support.ports import refused_port
from tests.support.protocol_front import ProtocolFront, pg_error
from tests.support.secrets import remember
from tests.support.skewed_sts import SkewedSts, sts_with_offset


async def checklist(env: dict[str, str]) -> tuple[int, list[str]]:
    """Run `check` (the checklist, not JSON) off the event loop; its lines, printed for the record (-s)."""
    proc = await asyncio.to_thread(run_agent, "check", env={"AGENT_TIMEOUT_SECONDS": "3", **env})
    assert "Traceback" not in proc.stderr, proc.stderr
    print(proc.stdout)
    return proc.returncode, proc.stdout.splitlines()


def line(lines: list[str], start: str) -> str:
    found = [text for text in lines if text.strip().startswith(start)]
    assert found, f"no line starts with {start!r}: {lines}"
    return found[0]


async def test_check_fails_credentials_on_a_clock_six_minutes_off(aws_env: AwsEnv, skewed_sts: list[SkewedSts]) -> None:
    await sts_with_offset(aws_env, skewed_sts, 360)
    env = {"AGENT_DB_DSN": f"postgresql://app@{RDS_HOST}/orders", "AGENT_DB_IAM_AUTH": "true"}
    code, lines = await checklist(env)
    assert code == 1
    assert "FAIL  credentials [aws]" in line(lines, "FAIL  credentials") and "auth (aws:clock_skew" in lines[2]
    assert "clock skew +3" in line(lines, "clock skew") and "169.254.169.123" in line(lines, "next:")


async def test_check_reports_a_two_minute_skew_and_signs_for_the_iam_host(
    aws_env: AwsEnv, skewed_sts: list[SkewedSts]
) -> None:
    """No failure for the skew; the token for the endpoint named in AGENT_DB_IAM_HOST (the DSN: a closed port)."""
    await sts_with_offset(aws_env, skewed_sts, -120)
    env = {
        "AGENT_DB_DSN": f"postgresql://app@127.0.0.1:{refused_port()}/orders",
        "AGENT_DB_IAM_AUTH": "true",
        "AGENT_DB_IAM_HOST": RDS_HOST,
    }
    code, lines = await checklist(env)
    assert code == 1  # the database: nothing listens
    assert "PASS  credentials [aws]" in lines[2] and "clock_skew_seconds=-1" in lines[3]
    assert "PASS  token [default]" in line(lines, "PASS  token") and f"signed_for={RDS_HOST}:" in lines[5]
    assert "FAIL  db [default]" in line(lines, "FAIL  db") and "note:" not in "\n".join(lines[4:7])


async def test_check_notes_a_localhost_tunnel_before_the_login_fails(
    aws_env: AwsEnv, skewed_sts: list[SkewedSts], pg_tls_admin: PgAdmin, pg_tls_cluster: Any
) -> None:
    """The token probe passes with a note; the rejected login's hint starts with the cause and the fix."""
    await sts_with_offset(aws_env, skewed_sts, 0)
    user = await pg_tls_admin.role(remember(random_password()))
    dsn = f"postgresql://{user}@localhost:{pg_tls_cluster.port}/postgres?sslmode=require"
    code, lines = await checklist({"AGENT_DB_DSN": dsn, "AGENT_DB_IAM_AUTH": "true", "AWS_REGION": "eu-west-1"})
    assert code == 1
    note = line(lines, "note: the IAM token is signed for localhost")
    assert "a loopback name (a tunnel or a port-forward)" in note and "AGENT_DB_IAM_HOST" in note
    assert "FAIL  db [default]" in line(lines, "FAIL  db") and "auth (" in line(lines, "FAIL  db")
    assert line(lines, "next:").strip().startswith("next: The IAM token is signed for localhost")


async def test_check_names_the_proxys_tls_requirement() -> None:
    """An RDS Proxy stand-in on the PostgreSQL protocol, answering a plaintext login as the proxy does."""
    front = await ProtocolFront("127.0.0.1", 9).start()
    try:
        front.refuse(pg_error("28000", "This RDS Proxy requires TLS connections"))
        dsn = f"postgresql://app@127.0.0.1:{front.port}/orders?sslmode=disable"
        code, lines = await checklist({"AGENT_DB_DSN": dsn, "AGENT_DB_PASSWORD": remember(random_password())})
    finally:
        await front.close()
    assert code == 1
    assert "tls (db:proxy_requires_tls" in line(lines, "FAIL  db")
    assert "sslmode=require" in line(lines, "next:")
