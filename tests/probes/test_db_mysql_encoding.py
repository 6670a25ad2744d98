"""MySQL passwords beyond ASCII: sent as the UTF-8 the server hashed them in (utf8mb4), through the db probe."""

from __future__ import annotations

import secrets

import pytest
from pydantic import SecretStr

from agent.probes.base import TargetState
from agent.probes.db import DatabaseProbe
from agent.probes.runner import run_probe
from tests.support.databases import MySqlAdmin, assert_no_secret, target_for
from tests.support.secrets import remember

TIMEOUT = 3.0


@pytest.mark.parametrize(
    "password",
    [
        "café",  # latin-1 can encode it, but as one byte for é where UTF-8 has two: rejected until now
        "pässwörd-€-",  # € is outside latin-1: could not be sent at all
        "密码-パスワード-",
    ],
    ids=["latin-1-range", "beyond-latin-1", "cjk"],
)
async def test_a_non_ascii_password_logs_in(mysql_admin: MySqlAdmin, password: str) -> None:
    [(client_charset,)] = await mysql_admin.execute("SELECT @@character_set_client")
    assert client_charset == "utf8mb4"  # the user's password is hashed from its UTF-8 bytes
    password = remember(password if password == "café" else password + secrets.token_hex(4))
    user = await mysql_admin.user(password)
    probe = DatabaseProbe(
        target_for(mysql_admin.server, user, password=SecretStr(password)), TargetState(), timeout=TIMEOUT
    )
    result = await run_probe(probe, TIMEOUT)
    assert result.ok, f"{result.code}: {result.message}"
    assert result.details["user"] == user
    assert_no_secret(result, password)


async def test_a_wrong_non_ascii_password_is_still_a_rejected_login(mysql_admin: MySqlAdmin) -> None:
    """The encoding changes what is sent, not what counts: a near miss (é for e) is the ordinary 1045."""
    user = await mysql_admin.user(remember("cafe-" + secrets.token_hex(4)))
    wrong = remember("café-" + secrets.token_hex(4))
    probe = DatabaseProbe(
        target_for(mysql_admin.server, user, password=SecretStr(wrong)), TargetState(), timeout=TIMEOUT
    )
    result = await run_probe(probe, TIMEOUT)
    assert (result.ok, result.code) == (False, "mysql:1045")
    assert_no_secret(result, wrong)
