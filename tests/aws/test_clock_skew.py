"""Clock skew, read from the `Date` header of the AWS answers the agent gets anyway (issue 14, item 7): reported
signed (server minus local) on the credentials probe, /status and /metrics; past 4 minutes the credentials probe
fails `aws:clock_skew` with a time-sync hint; AWS's "Signature expired" answers read as the clock, not the key."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from email.utils import formatdate
from typing import Any

import aiobotocore.session  # noqa: F401 - imported here, not first inside a running loop (the blocking guard)
import pytest

from agent.aws.clients import AwsClients
from agent.aws.clock import note_date
from agent.outputs.metrics import build_registry, render
from agent.outputs.server import status_body
from agent.probes.base import TargetState
from agent.probes.credentials import CredentialsProbe
from agent.probes.db import DatabaseProbe
from agent.probes.runner import run_probe
from agent.shared.clock import CLOCK, ClockSkew
from agent.shared.reasons import Failure, Reason, Scope
from tests.outputs.test_metrics import PROMTOOL_PACKAGE, parse, value
from tests.support.aws import PROBE_TIMEOUT, REGION, AwsEnv, make_target
from tests.support.http import ready_state
from tests.support.skewed_sts import SkewedSts, sts_with_offset


@pytest.fixture(autouse=True)
def fresh_clock() -> Iterator[None]:
    """Each test starts with no reading (the holder is process-wide, like the call counters)."""
    saved = CLOCK.seconds
    CLOCK.seconds = None
    yield
    CLOCK.seconds = saved


async def test_six_minutes_off_fails_credentials_with_clock_skew_and_a_time_sync_hint(
    aws_env: AwsEnv, aws: AwsClients, skewed_sts: list[SkewedSts]
) -> None:
    """AWS still answered (the stand-in does not check signatures): the agent fails before AWS starts refusing."""
    await sts_with_offset(aws_env, skewed_sts, 360)
    result = await run_probe(CredentialsProbe(aws, REGION), PROBE_TIMEOUT)
    assert (result.ok, result.reason, result.code, result.scope) == (False, Reason.AUTH, "aws:clock_skew", Scope.TASK)
    assert CLOCK.seconds is not None and 357 <= CLOCK.seconds <= 361
    assert "clock skew +3" in result.message and "behind AWS's" in result.message
    assert "169.254.169.123" in result.hint and "chronyc tracking" in result.hint and "Fargate" in result.hint
    assert "clock skew +3" in result.hint  # the measured value, in the hint too


async def test_two_minutes_off_passes_and_reports_the_skew(
    aws_env: AwsEnv, aws: AwsClients, skewed_sts: list[SkewedSts]
) -> None:
    """Within the limit: no failure, the signed skew is a detail (check prints it) and in the snapshot."""
    await sts_with_offset(aws_env, skewed_sts, -120)
    result = await run_probe(CredentialsProbe(aws, REGION), PROBE_TIMEOUT)
    assert result.ok, result.message
    assert -121 <= float(result.details["clock_skew_seconds"]) <= -118
    assert result.details["clock_skew_seconds"].startswith("-")


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            "SignatureDoesNotMatch",
            "Signature expired: 20261130T140000Z is now earlier than 20261130T140600Z (20261130T141100Z - 5 min.)",
        ),
        (
            "SignatureDoesNotMatch",
            "Signature not yet current: 20261130T142000Z is still later than 20261130T141400Z (20261130T140900Z + 5"
            " min.)",
        ),
    ],
)
async def test_signature_expired_answers_are_clock_skew_not_a_wrong_key(
    aws_env: AwsEnv, aws: AwsClients, aws_stub: Any, code: str, message: str
) -> None:
    """STS's real answer shape (query protocol, 403) from a stub: aws:clock_skew, with the NTP hint."""
    stub = await aws_stub(code, 403, message)
    aws_env.endpoint(stub.url)
    aws_env.set("AWS_ACCESS_KEY_ID", "AKIASTUB000000000000")
    aws_env.set("AWS_SECRET_ACCESS_KEY", "stub-secret-key-value")
    result = await run_probe(CredentialsProbe(aws, REGION), PROBE_TIMEOUT)
    assert (result.reason, result.code) == (Reason.AUTH, "aws:clock_skew"), result.message
    assert message.split(":")[0] in result.message and "169.254.169.123" in result.hint
    assert "wrong secret key" not in result.hint
    assert CLOCK.seconds is not None and abs(CLOCK.seconds) < 5  # the error answer's Date was read too


async def test_secrets_manager_invalid_signature_is_clock_skew(aws_env: AwsEnv, aws: AwsClients, aws_stub: Any) -> None:
    """JSON services answer InvalidSignatureException with the same text."""
    text = "Signature expired: 20261130T140000Z is now earlier than 20261130T140600Z (20261130T141100Z - 5 min.)"
    stub = await aws_stub("InvalidSignatureException", 400, text)
    aws_env.endpoint(stub.url)
    aws_env.set("AWS_ACCESS_KEY_ID", "AKIASTUB000000000000")
    aws_env.set("AWS_SECRET_ACCESS_KEY", "stub-secret-key-value")
    with pytest.raises(Exception) as raised:
        await aws.call("secretsmanager", "GetSecretValue", REGION, SecretId="orders/db")
    failure = aws.classify(raised.value, "secretsmanager")
    assert failure is not None and (failure.reason, failure.code) == (Reason.AUTH, "aws:clock_skew")


async def test_a_wrong_secret_key_stays_signature_does_not_match(
    aws_env: AwsEnv, aws: AwsClients, aws_stub: Any
) -> None:
    """The same code with STS's other message is a wrong secret key, as before."""
    text = "The request signature we calculated does not match the signature you provided."
    stub = await aws_stub("SignatureDoesNotMatch", 403, text)
    aws_env.endpoint(stub.url)
    aws_env.set("AWS_ACCESS_KEY_ID", "AKIASTUB000000000000")
    aws_env.set("AWS_SECRET_ACCESS_KEY", "stub-secret-key-value")
    result = await run_probe(CredentialsProbe(aws, REGION), PROBE_TIMEOUT)
    assert result.code == "sts:SignatureDoesNotMatch"


class _Answer:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


@pytest.mark.parametrize("date", [None, "", "yesterday", "x" * 200, "Sun, 06 Nov 1994 08:49:37"])
def test_a_missing_or_unreadable_date_leaves_the_reading_alone(date: str | None) -> None:
    clock = ClockSkew()
    note_date(http_response=_Answer({} if date is None else {"Date": date}), clock=clock)
    note_date(http_response=None, clock=clock)
    assert clock.seconds is None or date == "Sun, 06 Nov 1994 08:49:37"  # a zoneless date is read as GMT
    if clock.seconds is not None:
        assert clock.seconds < -1e9 and clock.excessive


def test_the_reading_is_server_minus_local() -> None:
    clock = ClockSkew()
    note_date(http_response=_Answer({"Date": formatdate(time.time() + 90, usegmt=True)}), clock=clock)
    assert clock.seconds is not None and 88 <= clock.seconds <= 91 and not clock.excessive
    assert "behind AWS's" in clock.describe()


async def test_metrics_and_status_show_the_skew_once_known_and_promtool_accepts_it() -> None:
    """Absent (null) before any AWS answer; the signed value after."""
    state = ready_state()
    assert status_body(state.snapshot(), full=False)["clock_skew_seconds"] is None
    assert value(parse(render(build_registry(state)).decode()), "health_agent_clock_skew_seconds") is None
    CLOCK.note(server_time=1000.0, local_time=1361.5)
    state = ready_state()
    exposition = render(build_registry(state))
    assert value(parse(exposition.decode()), "health_agent_clock_skew_seconds") == -361.5
    assert status_body(state.snapshot(), full=False)["clock_skew_seconds"] == -361.5
    promtool = await asyncio.to_thread(shutil.which, "promtool")
    if promtool is None:
        pytest.fail(f"promtool not found: install the Debian package `{PROMTOOL_PACKAGE}`")
    command = [promtool, "check", "metrics"]
    checked = await asyncio.to_thread(subprocess.run, command, input=exposition, capture_output=True, timeout=10)
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()


def test_a_rejected_iam_login_names_a_known_skew() -> None:
    """RDS answers a token signed by a skewed clock like any rejected token: the hint says what the agent knows."""
    probe = DatabaseProbe(make_target(iam_auth=True), TargetState(), timeout=2.0)
    rejected = Failure(Reason.AUTH, "pg:28000:pam", "PAM (RDS IAM) login rejected: PAM authentication failed")
    assert "clock skew" not in probe.hint(rejected)
    CLOCK.note(server_time=1000.0, local_time=1400.0)
    hint = probe.hint(rejected)
    assert hint.startswith("This task's clock skew -400.0 s") and "GRANT rds_iam" in hint
    password_target = DatabaseProbe(make_target(), TargetState(), timeout=2.0)
    assert "clock skew" not in password_target.hint(Failure(Reason.AUTH, "pg:28P01", "login rejected"))
