"""An STS stand-in whose `Date` header is off this machine's clock, and the fixture that stops it (clock skew tests,
in process and through `check`)."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from email.utils import formatdate

import pytest
from aiohttp import web

from tests.support.aws import ACCOUNT, AwsEnv, LoopbackHttp
from tests.support.secrets import remember

ARN = f"arn:aws:iam::{ACCOUNT}:user/agent"


class SkewedSts(LoopbackHttp):
    """STS GetCallerIdentity answered with success, and a `Date` header `offset` seconds from this machine's clock."""

    def __init__(self, offset: float) -> None:
        self.offset = offset
        super().__init__()

    async def _handle(self, request: web.Request) -> web.Response:
        form = await request.post()
        assert form.get("Action") == "GetCallerIdentity"
        xml = (
            '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>'
            f"<Arn>{ARN}</Arn><UserId>AIDASTANDIN</UserId><Account>{ACCOUNT}</Account></GetCallerIdentityResult>"
            "<ResponseMetadata><RequestId>stand-in</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
        )
        date = formatdate(time.time() + self.offset, usegmt=True)  # aiohttp keeps a Date that is already set
        return web.Response(text=xml, content_type="text/xml", headers={"Date": date})


@pytest.fixture
async def skewed_sts() -> AsyncIterator[list[SkewedSts]]:
    """Started stand-ins, stopped after the test."""
    started: list[SkewedSts] = []
    yield started
    for stand_in in started:
        await stand_in.stop()


async def sts_with_offset(aws_env: AwsEnv, started: list[SkewedSts], offset: float) -> None:
    """Start a stand-in `offset` seconds off, and point the environment's AWS endpoint and static keys at it."""
    stand_in = SkewedSts(offset)
    started.append(stand_in)
    aws_env.endpoint(await stand_in.start())
    aws_env.set("AWS_ACCESS_KEY_ID", "AKIASTANDIN000000000")
    # random: a remembered value whose first 8 characters are a common word ("stand-in") fails the leak scan
    aws_env.set("AWS_SECRET_ACCESS_KEY", remember(f"skew-{secrets.token_hex(12)}"))
