"""MySQL 8's default authentication, caching_sha2_password, and sha256_password, against a stand-in that speaks
their exchange (no MySQL 8 server runs here): each outcome has a reason and a hint, and `cryptography` is imported
only when a login needs RSA (issue 13, section 5)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr
from pymysql._auth import scramble_caching_sha2

from agent.config.dsn import Engine, SslMode
from agent.config.models import TargetConfig
from agent.probes.base import ProbeResult, TargetState
from agent.probes.db import DatabaseProbe
from agent.probes.drivers.mysql_sha2 import scramble
from agent.probes.runner import run_probe
from agent.shared.reasons import Reason, Scope
from tests.support.agent_process import REPO
from tests.support.databases import Server, random_password, target_for
from tests.support.mysql8 import NATIVE, SHA256, Keys, Mysql8StandIn, make_keys, scramble_sha2

TIMEOUT = 3.0
USER = "app"


@pytest.fixture(scope="module")
def keys() -> Keys:
    return make_keys()


@pytest.fixture
def password() -> str:
    return random_password()


@contextlib.asynccontextmanager
async def standin(keys: Keys, password: str, **fields: Any) -> AsyncIterator[Mysql8StandIn]:
    """A stand-in with one account, USER with `password`, configured by Mysql8StandIn's `fields`."""
    server = await Mysql8StandIn(keys, {USER: password}, **fields).start()
    try:
        yield server
    finally:
        await server.close()


def aimed(server: Mysql8StandIn, password: str, sslmode: SslMode = SslMode.DISABLE) -> TargetConfig:
    where = Server(Engine.MYSQL, "127.0.0.1", server.port, "root", "", None)
    return target_for(where, USER, password=SecretStr(password), sslmode=sslmode)


async def check(target: TargetConfig) -> ProbeResult:
    return await run_probe(DatabaseProbe(target, TargetState(), timeout=TIMEOUT), TIMEOUT)


async def test_fast_authentication_passes(keys: Keys, password: str) -> None:
    async with standin(keys, password, cached={USER}) as server:
        result = await check(aimed(server, password))
    assert (result.ok, result.message) == (True, ""), result.message
    assert server.seen == ["fast"]


async def test_a_cache_miss_without_tls_logs_in_through_the_rsa_exchange(keys: Keys, password: str) -> None:
    """The case that ended as `unknown` (RuntimeError, no cryptography): the server's key, the password
    encrypted with it, a pass."""
    async with standin(keys, password) as server:
        result = await check(aimed(server, password))
        assert result.ok, result.message
        assert server.seen == ["full:rsa"]
        again = await check(aimed(server, password))
    assert again.ok and server.seen == ["full:rsa", "fast"], "a full authentication fills the server's cache"


async def test_a_cache_miss_over_tls_sends_the_password_in_the_tls_session(keys: Keys, password: str) -> None:
    async with standin(keys, password, tls=True) as server:
        result = await check(aimed(server, password, SslMode.REQUIRE))
    assert result.ok and result.details["tls"].startswith("TLS"), result.message
    assert server.seen == ["full:tls"]


@pytest.mark.parametrize(("cached", "path"), [(False, "full:rsa"), (True, "fast")])
async def test_a_switch_to_caching_sha2_password_is_followed(
    keys: Keys, password: str, cached: bool, path: str
) -> None:
    """The greeting names mysql_native_password, the account's plugin is caching_sha2_password: the server
    switches (AuthSwitchRequest, a new nonce and a NUL). Both paths use the nonce without the NUL (the password,
    24 characters, is longer than the nonce: a NUL kept would spoil the RSA step too)."""
    async with standin(keys, password, greeting_plugin=NATIVE, cached={USER} if cached else set()) as server:
        result = await check(aimed(server, password))
    assert result.ok and server.seen == [path], result.message


def test_the_scramble_is_the_one_pymysql_and_the_server_compute() -> None:
    nonce, secret = b"0123456789abcdefghij", b"p" * 30
    assert scramble(secret, nonce) == scramble_caching_sha2(secret, nonce) == scramble_sha2(secret, nonce)


@pytest.mark.parametrize("sslmode", [SslMode.DISABLE, SslMode.REQUIRE])
async def test_a_wrong_password_after_full_authentication_is_auth(keys: Keys, password: str, sslmode: SslMode) -> None:
    async with standin(keys, password, tls=True) as server:
        result = await check(aimed(server, random_password(), sslmode))
    assert (result.reason, result.code, result.scope) == (Reason.AUTH, "mysql:1045", Scope.TASK)
    assert server.seen == ["full:rsa" if sslmode is SslMode.DISABLE else "full:tls", "denied"]
    assert "The password for app was rejected" in result.hint


async def test_a_server_without_rsa_keys_demands_tls(keys: Keys, password: str) -> None:
    """A full authentication without TLS and without RSA keys: the server refuses before any password is sent;
    that is `tls` with its own code, not a rejected password."""
    async with standin(keys, password, rsa=False) as server:
        result = await check(aimed(server, password))
    assert (result.reason, result.code) == (Reason.TLS, "mysql:sha2:needs_tls")
    assert "refused to do one without TLS" in result.message and server.seen == ["key_refused"]
    assert "Set sslmode=require or verify-full" in result.hint and "no RSA key pair" in result.hint


async def test_the_same_server_takes_the_login_over_tls(keys: Keys, password: str) -> None:
    async with standin(keys, password, rsa=False, tls=True) as server:
        assert (await check(aimed(server, password, SslMode.REQUIRE))).ok
    assert server.seen == ["full:tls"]


@pytest.mark.parametrize(("tls", "path"), [(False, "full:rsa"), (True, "full:tls")])
async def test_sha256_password_over_rsa_or_tls(keys: Keys, password: str, tls: bool, path: str) -> None:
    async with standin(keys, password, plugin=SHA256, greeting_plugin=SHA256, tls=tls) as server:
        result = await check(aimed(server, password, SslMode.REQUIRE if tls else SslMode.DISABLE))
    assert result.ok and server.seen == [path], result.message


# -- cryptography: imported only for RSA, and its absence is a reason, not a crash ---------------------------

# Run in a fresh interpreter, which has not imported cryptography (the tests' own helpers have).
LOGIN = """
import asyncio, json, sys
if sys.argv[3] == "without":
    sys.modules["cryptography"] = None  # an installation without the package
from pydantic import SecretStr
from agent.config.dsn import Engine, SslMode
from agent.config.models import TargetConfig
from agent.probes.base import TargetState
from agent.probes.db import DatabaseProbe
from agent.probes.runner import run_probe
import agent.probes.drivers.mysql
before = "cryptography" in sys.modules and sys.modules["cryptography"] is not None
target = TargetConfig(name="t", engine=Engine.MYSQL, host="127.0.0.1", port=int(sys.argv[1]), user="app",
    password=SecretStr(sys.argv[2]), database=None, sslmode=SslMode.DISABLE, dsn="mysql://app@127.0.0.1/")
result = asyncio.run(run_probe(DatabaseProbe(target, TargetState(), timeout=3), 3))
after = "cryptography" in sys.modules and sys.modules["cryptography"] is not None
print(json.dumps({"before": before, "after": after, "ok": result.ok, "code": result.code,
    "reason": result.reason, "message": result.message, "hint": result.hint}))
"""


async def login_elsewhere(server: Mysql8StandIn, password: str, cryptography: str = "with") -> dict[str, Any]:
    """One login by a fresh `python` process; the stand-in answers on this test's loop."""
    command = [sys.executable, "-c", LOGIN, str(server.port), password, cryptography]
    done = await asyncio.to_thread(subprocess.run, command, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


async def test_cryptography_is_not_imported_with_the_driver_nor_for_fast_authentication(
    keys: Keys, password: str
) -> None:
    async with standin(keys, password, cached={USER}) as server:
        answer = await login_elsewhere(server, password)
    assert (answer["ok"], answer["before"], answer["after"]) == (True, False, False), answer


async def test_cryptography_is_imported_when_a_login_needs_rsa(keys: Keys, password: str) -> None:
    async with standin(keys, password) as server:
        answer = await login_elsewhere(server, password)
    assert (answer["ok"], answer["before"], answer["after"]) == (True, False, True), answer


async def test_without_cryptography_the_rsa_step_is_config_with_its_hint(keys: Keys, password: str) -> None:
    """Not `unknown` (RuntimeError): a reason, a code and what to do."""
    async with standin(keys, password) as server:
        answer = await login_elsewhere(server, password, "without")
    assert (answer["ok"], answer["reason"], answer["code"]) == (False, "config", "mysql:sha2:no_rsa"), answer
    assert "cryptography" in answer["message"] and "sslmode=require" in answer["hint"]
