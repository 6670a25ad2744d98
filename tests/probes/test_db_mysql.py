"""DatabaseProbe against a real MariaDB, through run_probe: every reason that can really occur."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

import aiomysql
from pydantic import SecretStr

from agent.config.dsn import Engine, SslMode
from agent.config.models import TargetConfig
from agent.probes.base import ProbeResult, TargetState
from agent.probes.db import DatabaseProbe
from agent.probes.pacing import LoginPacing
from agent.probes.runner import run_probe
from agent.shared.counters import COUNTERS
from agent.shared.reasons import Reason, Scope
from tests.support.databases import MySqlAdmin, Server, assert_no_secret, random_password, target_for
from tests.support.hermetic import NO_SUCH_DB_HOST

TIMEOUT = 3.0
SECRET_ID = "orders/db-password"


def opened(target: TargetConfig) -> int:
    return COUNTERS.db_connections_opened[target.name]


async def check(
    target: TargetConfig,
    state: TargetState | None = None,
    timeout: float = TIMEOUT,
    refresh: Callable[[], Awaitable[None]] | None = None,
) -> ProbeResult:
    """One one-shot run, as `check` does it."""
    probe = DatabaseProbe(target, state or TargetState(), timeout=timeout, refresh_secret=refresh)
    return await run_probe(probe, timeout)


async def new_user(
    admin: MySqlAdmin, max_connections: int | None = None, grant_prefix: bool = False
) -> tuple[str, str]:
    """A new user with a random password: (name, password)."""
    password = random_password()
    return await admin.user(password, max_connections=max_connections, grant_prefix=grant_prefix), password


def loopback(port: int) -> Server:
    return Server(Engine.MYSQL, "127.0.0.1", port, "x", "", None)


async def test_success_reports_version_tls_login_and_leaves_no_session(mysql_admin: MySqlAdmin) -> None:
    user, password = await new_user(mysql_admin)
    target = target_for(mysql_admin.server, user, password=SecretStr(password))
    result = await check(target)
    assert result.ok, result.message
    assert result.details["server_version"]
    assert {k: result.details[k] for k in ("tls", "login", "user", "connection")} == {
        "tls": "none",
        "login": "static",
        "user": user,
        "connection": "new",
    }
    assert opened(target) == 1
    assert await mysql_admin.settle(user, 0) == []
    assert_no_secret(result, password)


async def test_wrong_password_is_auth_1045(mysql_admin: MySqlAdmin) -> None:
    user, password = await new_user(mysql_admin)
    wrong = random_password()
    result = await check(target_for(mysql_admin.server, user, password=SecretStr(wrong)))
    assert (result.reason, result.code) == (Reason.AUTH, "mysql:1045")
    assert f"Access denied for user '{user}'" in result.message
    assert f"The password for {user} was rejected" in result.hint
    assert_no_secret(result, password, wrong)


async def test_unknown_user_is_auth(mysql_server: Server) -> None:
    result = await check(target_for(mysql_server, "eha_nobody_here", password=SecretStr(random_password())))
    assert result.reason is Reason.AUTH
    assert result.code in {"mysql:1045", "mysql:1698"}  # MariaDB answers 1698 for an unknown user


async def test_unknown_database_is_config_when_the_user_may_see_it(mysql_admin: MySqlAdmin) -> None:
    user, password = await new_user(mysql_admin, grant_prefix=True)
    missing = f"{user}_missing"
    result = await check(target_for(mysql_admin.server, user, password=SecretStr(password), database=missing))
    assert (result.reason, result.code) == (Reason.CONFIG, "mysql:1049")
    assert f"Database {missing} does not exist" in result.hint


async def test_unknown_database_without_privileges_reads_as_access_denied(mysql_admin: MySqlAdmin) -> None:
    user, password = await new_user(mysql_admin)
    result = await check(target_for(mysql_admin.server, user, password=SecretStr(password), database="eha_none"))
    assert (result.reason, result.code) == (Reason.AUTH, "mysql:1044")
    assert "or it does not exist" in result.hint


async def test_refused_port_is_2003_refused(closed_port: int) -> None:
    result = await check(target_for(loopback(closed_port), "app", password=SecretStr(random_password())))
    assert (result.reason, result.code) == (Reason.NETWORK, "mysql:2003:refused")
    assert "ConnectionRefusedError" in result.message and f"127.0.0.1:{closed_port}" in result.message


async def test_unresolvable_host_is_dns() -> None:
    """aiomysql's asyncio.open_connection gets EAI_NONAME for the declared name, as from the system resolver."""
    server = Server(Engine.MYSQL, NO_SUCH_DB_HOST, 3306, "x", "", None)
    result = await check(target_for(server, "app", password=SecretStr(random_password())))
    assert (result.reason, result.code) == (Reason.DNS, "db:dns")
    assert NO_SUCH_DB_HOST in result.hint


async def test_silent_listener_times_out_within_the_budget_and_says_where(silent_port: int) -> None:
    """aiomysql alone would wait forever for the greeting: connect_timeout covers only the TCP open."""
    started = time.monotonic()
    result = await check(target_for(loopback(silent_port), "app", password=SecretStr("x" * 12)), timeout=0.5)
    assert time.monotonic() - started < 0.5 + 0.3
    assert (result.reason, result.code) == (Reason.TIMEOUT, "db:timeout")
    assert "waiting for the server greeting" in result.message
    assert "accepted the TCP connection" in result.hint


async def test_tls_required_against_a_server_without_tls_sends_no_credentials(mysql_admin: MySqlAdmin) -> None:
    user, password = await new_user(mysql_admin)
    target = target_for(mysql_admin.server, user, password=SecretStr(password), sslmode=SslMode.REQUIRE)
    result = await check(target)
    assert (result.reason, result.code) == (Reason.TLS, "db:tls_not_negotiated")
    assert "no credentials were sent" in result.message
    assert opened(target) == 0
    prefer = target_for(mysql_admin.server, user, password=SecretStr(password), sslmode=SslMode.PREFER)
    relaxed = await check(prefer)
    assert relaxed.ok and relaxed.details["tls"] == "none"


async def test_user_connection_limit_is_server(mysql_admin: MySqlAdmin) -> None:
    user, password = await new_user(mysql_admin, max_connections=1)
    server = mysql_admin.server
    held = await aiomysql.connect(host=server.host, port=server.port, user=user, password=password)
    try:
        result = await check(target_for(server, user, password=SecretStr(password)))
    finally:
        await held.ensure_closed()
    assert (result.reason, result.code) == (Reason.SERVER, "mysql:1226")
    assert "MAX_USER_CONNECTIONS" in result.hint


async def test_password_drift_static_wrong_secret_right(mysql_admin: MySqlAdmin) -> None:
    """The incident: the task definition's DB_PASSWORD was stale while the real password was elsewhere."""
    user, password = await new_user(mysql_admin)
    stale = random_password()
    target = target_for(mysql_admin.server, user, password=SecretStr(stale), secret_id=SECRET_ID)
    result = await check(target, TargetState(secret_password=SecretStr(password)))
    assert (result.reason, result.code) == (Reason.AUTH, "db:password_drift")
    assert "AGENT_DB_PASSWORD differs from the secret" in result.message and SECRET_ID in result.message
    assert await mysql_admin.settle(user, 0) == []
    assert_no_secret(result, password, stale)


async def test_drift_check_says_whether_two_rejected_passwords_are_equal(mysql_admin: MySqlAdmin) -> None:
    user, password = await new_user(mysql_admin)
    wrong, other = random_password(), random_password()
    for secret, relation in [(wrong, "holds the same password"), (other, "holds a different password")]:
        target = target_for(mysql_admin.server, user, password=SecretStr(wrong), secret_id=SECRET_ID)
        result = await check(target, TargetState(secret_password=SecretStr(secret)))
        assert (result.reason, result.code) == (Reason.AUTH, "mysql:1045")
        assert relation in result.message
        assert_no_secret(result, password, wrong, other)


async def test_rotated_secret_is_refetched_once_and_the_login_succeeds(mysql_admin: MySqlAdmin) -> None:
    user, old = await new_user(mysql_admin)
    new = random_password()
    await mysql_admin.set_password(user, new)
    state = TargetState(secret_password=SecretStr(old), secret_user=user)
    calls = []

    async def refresh() -> None:
        calls.append(1)
        state.secret_password = SecretStr(new)

    result = await check(target_for(mysql_admin.server, None, secret_id=SECRET_ID), state, refresh=refresh)
    assert result.ok, result.message
    assert (result.details["login"], result.details["secret_refetched"]) == ("secret", "yes")
    assert calls == [1]
    assert_no_secret(result, old, new)


async def test_iam_grant_check_reads_the_accounts_plugin(mysql_admin: MySqlAdmin) -> None:
    """No AWSAuthenticationPlugin here: a password account must read as `iam_grant: no`."""
    user, password = await new_user(mysql_admin)
    target = target_for(mysql_admin.server, user, iam_auth=True, sslmode=SslMode.PREFER, region="eu-west-1")
    result = await check(target, TargetState(token=SecretStr(password)))
    assert result.ok, result.message
    assert (result.details["login"], result.details["iam_grant"]) == ("iam", "no")


# -- continuous mode -----------------------------------------------------------------------------------------


async def test_kept_connection_is_pinged_not_reopened(mysql_admin: MySqlAdmin) -> None:
    user, password = await new_user(mysql_admin)
    target = target_for(mysql_admin.server, user, password=SecretStr(password))
    probe = DatabaseProbe(target, TargetState(), timeout=TIMEOUT, keep_connection=True, reauth_seconds=300)
    try:
        results = [await run_probe(probe, TIMEOUT) for _ in range(3)]
        assert [r.details["connection"] for r in results] == ["new", "kept", "kept"]
        assert len(await mysql_admin.thread_ids(user)) == 1
        assert opened(target) == 1
    finally:
        await probe.close()
    assert await mysql_admin.settle(user, 0) == []


async def test_killed_kept_connection_is_replaced_in_the_same_run(mysql_admin: MySqlAdmin) -> None:
    user, password = await new_user(mysql_admin)
    target = target_for(mysql_admin.server, user, password=SecretStr(password))
    probe = DatabaseProbe(target, TargetState(), timeout=TIMEOUT, keep_connection=True)
    try:
        assert (await run_probe(probe, TIMEOUT)).ok
        [old_id] = await mysql_admin.thread_ids(user)
        await mysql_admin.kill(old_id)
        await mysql_admin.settle(user, 0)
        result = await run_probe(probe, TIMEOUT)
        assert result.ok, result.message
        assert result.details["connection"] == "new"
        [new_id] = await mysql_admin.thread_ids(user)
        assert new_id != old_id and opened(target) == 2
    finally:
        await probe.close()


async def test_reauth_opens_a_new_connection_and_closes_the_old(mysql_admin: MySqlAdmin) -> None:
    user, password = await new_user(mysql_admin, max_connections=1)  # close-before-open makes this work
    target = target_for(mysql_admin.server, user, password=SecretStr(password))
    probe = DatabaseProbe(target, TargetState(), timeout=TIMEOUT, keep_connection=True, reauth_seconds=0.2)
    try:
        assert (await run_probe(probe, TIMEOUT)).details["connection"] == "new"
        [old_id] = await mysql_admin.thread_ids(user)
        await asyncio.sleep(0.25)
        result = await run_probe(probe, TIMEOUT)
        assert result.ok, result.message
        assert result.details["connection"] == "new"
        [new_id] = await mysql_admin.settle(user, 1)
        assert new_id != old_id and opened(target) == 2
    finally:
        await probe.close()
    assert await mysql_admin.settle(user, 0) == []


async def test_failing_runs_never_leave_sessions_behind(mysql_admin: MySqlAdmin) -> None:
    user, password = await new_user(mysql_admin)
    good = target_for(mysql_admin.server, user, password=SecretStr(password))
    tls = target_for(mysql_admin.server, user, password=SecretStr(password), sslmode=SslMode.REQUIRE)
    drift = target_for(mysql_admin.server, user, password=SecretStr("stale-password"), secret_id=SECRET_ID)
    for _ in range(5):
        assert (await check(good)).ok
        assert not (await check(tls)).ok
        assert not (await check(drift, TargetState(secret_password=SecretStr(password)))).ok
    assert await mysql_admin.settle(user, 0) == []


async def test_a_kept_connection_the_server_kills_is_noticed_at_once_and_the_relogin_is_spread(
    mysql_admin: MySqlAdmin,
) -> None:
    """KILL fires the close event within 1 s (aiomysql has none: the transport's connection_lost); the next run
    fails db:connection_lost without a login, and logs in once the spread delay passed."""
    user, password = await new_user(mysql_admin)
    target = target_for(mysql_admin.server, user, password=SecretStr(password))
    lost = asyncio.Event()
    pacing = LoginPacing(0.1, 2, 30.0, 0.6, rng=random.Random(0))  # first draw: 0.844 x 0.6 s
    probe = DatabaseProbe(target, TargetState(), timeout=TIMEOUT, keep_connection=True, pacing=pacing, on_lost=lost.set)
    try:
        assert (await run_probe(probe, TIMEOUT)).ok
        [thread_id] = await mysql_admin.thread_ids(user)
        killed = time.monotonic()
        await mysql_admin.kill(thread_id)
        await asyncio.wait_for(lost.wait(), 1.0)
        assert time.monotonic() - killed < 1.0
        result = await run_probe(probe, TIMEOUT)
        assert (result.reason, result.code, result.scope) == (Reason.NETWORK, "db:connection_lost", Scope.SHARED)
        assert opened(target) == 1
        await asyncio.sleep(0.6)
        result = await run_probe(probe, TIMEOUT)
        assert result.ok and result.details["connection"] == "new", result.message
    finally:
        await probe.close()
    assert await mysql_admin.settle(user, 0) == []


async def test_closing_the_kept_connection_ourselves_is_not_a_lost_connection(mysql_admin: MySqlAdmin) -> None:
    """Our own close (shutdown, a due fresh login) must not fire the close event."""
    user, password = await new_user(mysql_admin)
    target = target_for(mysql_admin.server, user, password=SecretStr(password))
    lost = asyncio.Event()
    probe = DatabaseProbe(target, TargetState(), timeout=TIMEOUT, keep_connection=True, on_lost=lost.set)
    assert (await run_probe(probe, TIMEOUT)).ok
    await probe.close()
    await asyncio.sleep(0.2)
    assert not lost.is_set()
