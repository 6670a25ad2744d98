"""DatabaseProbe against real PostgreSQL servers, through run_probe: every reason that can really occur."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

import asyncpg
from pydantic import SecretStr

from agent.config.dsn import Engine, SslMode
from agent.config.models import TargetConfig
from agent.probes.base import ProbeResult, TargetState
from agent.probes.db import DatabaseProbe
from agent.probes.pacing import LoginPacing
from agent.probes.runner import run_probe
from agent.sandbox.postgres import PostgresSandbox
from agent.shared.counters import COUNTERS
from agent.shared.reasons import Reason, Scope
from tests.support.databases import PgAdmin, Server, assert_no_secret, random_password, target_for
from tests.support.fault_proxy import Fault, fault_proxy
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


async def user_with_password(admin: PgAdmin, limit: int | None = None, rejected: bool = False) -> tuple[str, str]:
    """A new role with a random password: (name, password)."""
    password = random_password()
    return await admin.role(password, limit=limit, rejected=rejected), password


async def test_success_reports_version_tls_login_and_leaves_no_session(pg_admin: PgAdmin) -> None:
    user, password = await user_with_password(pg_admin)
    target = target_for(pg_admin.server, user, password=SecretStr(password), database="postgres")
    result = await check(target)
    assert result.ok, result.message
    details = dict(result.details)
    headroom = [details.pop(key) for key in ("connections", "max_connections")]  # the server's, changing
    assert all(count.isdigit() for count in headroom) and int(headroom[0]) < int(headroom[1]), headroom
    assert details.pop("password_expires_at") == "never"  # a role without VALID UNTIL
    assert details["server_version"][:1].isdigit()
    assert details | {"server_version": "-"} == {
        "server_version": "-",
        "tls": "none",
        "login": "static",
        "user": user,
        "read_only": "no",
        "resolved_address": "127.0.0.1",
        "connection": "new",
    }
    assert opened(target) == 1
    assert await pg_admin.settle(user, 0) == []
    assert_no_secret(result, password)


async def test_wrong_password_is_auth_and_the_hint_names_the_user(pg_admin: PgAdmin) -> None:
    user, password = await user_with_password(pg_admin)
    wrong = random_password()
    result = await check(target_for(pg_admin.server, user, password=SecretStr(wrong), database="postgres"))
    assert (result.reason, result.code) == (Reason.AUTH, "pg:28P01")
    assert f'password authentication failed for user "{user}"' in result.message
    assert f"The password for {user} was rejected" in result.hint
    assert_no_secret(result, password, wrong)


async def test_unknown_user_is_auth(pg_server: Server) -> None:
    result = await check(target_for(pg_server, "eha_nobody_here", password=SecretStr(random_password())))
    assert (result.reason, result.code) == (Reason.AUTH, "pg:28P01")


async def test_pg_hba_reject_is_auth_28000(pg_cluster_admin: PgAdmin) -> None:
    user, password = await user_with_password(pg_cluster_admin, rejected=True)
    result = await check(target_for(pg_cluster_admin.server, user, password=SecretStr(password)))
    assert (result.reason, result.code) == (Reason.AUTH, "pg:28000:hba_plaintext")
    assert "pg_hba.conf rejects connection" in result.message
    assert "pg_hba.conf" in result.hint and "rds.force_ssl" in result.hint


async def test_unknown_database_is_config(pg_admin: PgAdmin) -> None:
    user, password = await user_with_password(pg_admin)
    result = await check(target_for(pg_admin.server, user, password=SecretStr(password), database="eha_no_db"))
    assert (result.reason, result.code) == (Reason.CONFIG, "pg:3D000")
    assert "Database eha_no_db does not exist" in result.hint


async def test_refused_port_is_network_and_names_the_step(closed_port: int) -> None:
    server = Server(Engine.POSTGRESQL, "127.0.0.1", closed_port, "x", "", None)
    result = await check(target_for(server, "app", password=SecretStr(random_password())))
    assert (result.reason, result.code) == (Reason.NETWORK, "db:refused")
    assert f"during TCP connect to 127.0.0.1:{closed_port}" in result.message


async def test_unresolvable_host_is_dns() -> None:
    """asyncpg's loop.getaddrinfo gets EAI_NONAME for the declared name, as from the system resolver."""
    server = Server(Engine.POSTGRESQL, NO_SUCH_DB_HOST, 5432, "x", "", None)
    result = await check(target_for(server, "app", password=SecretStr(random_password())))
    assert (result.reason, result.code) == (Reason.DNS, "db:dns")
    assert f"{NO_SUCH_DB_HOST} does not resolve" in result.message
    assert NO_SUCH_DB_HOST in result.hint and "VPC" in result.hint


async def test_silent_listener_times_out_within_the_budget_and_says_where(silent_port: int) -> None:
    server = Server(Engine.POSTGRESQL, "127.0.0.1", silent_port, "x", "", None)
    started = time.monotonic()
    result = await check(target_for(server, "app", password=SecretStr(random_password())), timeout=0.5)
    assert time.monotonic() - started < 0.5 + 0.3
    assert (result.reason, result.code) == (Reason.TIMEOUT, "db:timeout")
    assert "during login as app" in result.message  # TCP was up: not the security group
    assert "accepted the TCP connection" in result.hint


async def test_tls_required_against_a_server_without_tls_is_tls(pg_cluster_admin: PgAdmin) -> None:
    user, password = await user_with_password(pg_cluster_admin)
    target = target_for(pg_cluster_admin.server, user, password=SecretStr(password), sslmode=SslMode.REQUIRE)
    result = await check(target)
    assert (result.reason, result.code) == (Reason.TLS, "db:tls_not_negotiated")
    assert "rejected SSL upgrade" in result.message and "sslmode=require" in result.hint
    assert opened(target) == 0


async def test_tls_is_really_negotiated_in_every_sslmode(
    pg_tls_cluster: PostgresSandbox, pg_tls_admin: PgAdmin
) -> None:
    user, password = await user_with_password(pg_tls_admin)
    ca = str(pg_tls_cluster.ca_cert)
    for mode, host in [
        (SslMode.PREFER, "127.0.0.1"),
        (SslMode.REQUIRE, "127.0.0.1"),
        (SslMode.VERIFY_CA, "127.0.0.1"),
        (SslMode.VERIFY_FULL, "localhost"),  # the name on the certificate
    ]:
        target = target_for(
            pg_tls_admin.server, user, host=host, password=SecretStr(password), sslmode=mode, sslrootcert=ca
        )
        result = await check(target)
        assert result.ok, f"{mode}: {result.message}"
        assert result.details["tls"].startswith("TLSv1."), mode


async def test_untrusted_certificate_is_tls_verify(pg_tls_admin: PgAdmin) -> None:
    user, password = await user_with_password(pg_tls_admin)
    target = target_for(pg_tls_admin.server, user, password=SecretStr(password), sslmode=SslMode.VERIFY_FULL)
    result = await check(target)  # the system CA store does not know the sandbox CA
    assert (result.reason, result.code) == (Reason.TLS, "db:tls_verify")
    assert "certificate verify failed" in result.message and "sslrootcert" in result.hint


async def test_missing_sslrootcert_is_config(pg_tls_admin: PgAdmin) -> None:
    target = target_for(
        pg_tls_admin.server, "app", password=SecretStr("x" * 12), sslmode=SslMode.VERIFY_CA, sslrootcert="/nope.pem"
    )
    result = await check(target)
    assert (result.reason, result.code) == (Reason.CONFIG, "db:sslrootcert")
    assert "/nope.pem" in result.message


async def test_connection_limit_is_server(pg_admin: PgAdmin) -> None:
    user, password = await user_with_password(pg_admin, limit=1)
    server = pg_admin.server
    held = await asyncpg.connect(
        host=server.host, port=server.port, user=user, password=password, database="postgres", ssl=False
    )
    try:
        result = await check(target_for(server, user, password=SecretStr(password), database="postgres"))
    finally:
        await held.close()
    assert (result.reason, result.code) == (Reason.SERVER, "pg:53300")
    assert "max_connections" in result.hint


async def test_password_drift_static_wrong_secret_right(pg_admin: PgAdmin) -> None:
    user, password = await user_with_password(pg_admin)
    stale = random_password()
    target = target_for(pg_admin.server, user, password=SecretStr(stale), secret_id=SECRET_ID, database="postgres")
    result = await check(target, TargetState(secret_password=SecretStr(password)))
    assert (result.reason, result.code) == (Reason.AUTH, "db:password_drift")
    assert "AGENT_DB_PASSWORD differs from the secret" in result.message and SECRET_ID in result.message
    assert "valueFrom" in result.hint
    assert opened(target) == 1  # the secret's login, closed again
    assert await pg_admin.settle(user, 0) == []
    assert_no_secret(result, password, stale)


async def test_password_drift_is_task_scope(pg_admin: PgAdmin) -> None:
    """A replacement task gets the secret's current value injected, so drift is this task's own failure: 503."""
    user, password = await user_with_password(pg_admin)
    target = target_for(pg_admin.server, user, password=SecretStr(random_password()), secret_id=SECRET_ID)
    result = await check(target, TargetState(secret_password=SecretStr(password)))
    assert (result.code, result.scope) == ("db:password_drift", Scope.TASK)


async def test_drift_check_says_whether_two_rejected_passwords_are_equal(pg_admin: PgAdmin) -> None:
    user, password = await user_with_password(pg_admin)
    wrong, other = random_password(), random_password()
    for secret, relation in [(wrong, "holds the same password"), (other, "holds a different password")]:
        target = target_for(pg_admin.server, user, password=SecretStr(wrong), secret_id=SECRET_ID)
        result = await check(target, TargetState(secret_password=SecretStr(secret)))
        assert (result.reason, result.code) == (Reason.AUTH, "pg:28P01")
        assert relation in result.message and "rejected too" in result.message
        assert_no_secret(result, password, wrong, other)


async def test_rotated_secret_is_refetched_once_and_the_login_succeeds(pg_admin: PgAdmin) -> None:
    user, old = await user_with_password(pg_admin)
    new = random_password()
    await pg_admin.set_password(user, new)
    state = TargetState(secret_password=SecretStr(old), secret_user=user)
    calls = []

    async def refresh() -> None:
        calls.append(1)
        state.secret_password = SecretStr(new)

    target = target_for(pg_admin.server, None, secret_id=SECRET_ID, database="postgres")
    result = await check(target, state, refresh=refresh)
    assert result.ok, result.message
    assert (result.details["login"], result.details["secret_refetched"], result.details["user"]) == (
        "secret",
        "yes",
        user,
    )
    assert calls == [1]
    assert_no_secret(result, old, new)


async def test_refetched_secret_with_the_same_password_reports_auth(pg_admin: PgAdmin) -> None:
    user, _ = await user_with_password(pg_admin)
    stale = random_password()
    state = TargetState(secret_password=SecretStr(stale))
    calls = []

    async def refresh() -> None:
        calls.append(1)

    result = await check(target_for(pg_admin.server, user, secret_id=SECRET_ID), state, refresh=refresh)
    assert (result.reason, result.code) == (Reason.AUTH, "pg:28P01")
    assert "still holds the rejected password" in result.message
    assert calls == [1]


async def test_failed_refetch_reports_the_rejection_and_points_at_the_secret_probe(pg_admin: PgAdmin) -> None:
    user, _ = await user_with_password(pg_admin)
    state = TargetState(secret_password=SecretStr(random_password()))

    async def refresh() -> None:  # what the agent's refresher does when Secrets Manager fails
        state.clear_secret()

    result = await check(target_for(pg_admin.server, user, secret_id=SECRET_ID), state, refresh=refresh)
    assert (result.reason, result.code) == (Reason.AUTH, "pg:28P01")
    assert f"fetching secret {SECRET_ID} again failed" in result.message


async def test_iam_login_checks_rds_iam_membership(pg_tls_cluster: PostgresSandbox, pg_tls_admin: PgAdmin) -> None:
    """On RDS the token is the password; here a real password stands in for it, over real TLS."""
    await pg_tls_admin.conn.execute(
        "DO $$ BEGIN CREATE ROLE rds_iam; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
    )
    member, token = await user_with_password(pg_tls_admin)
    await pg_tls_admin.conn.execute(f"GRANT rds_iam TO {member}")
    outsider, other_token = await user_with_password(pg_tls_admin)
    for user, secret, granted in [(member, token, "yes"), (outsider, other_token, "no")]:
        target = target_for(pg_tls_admin.server, user, iam_auth=True, sslmode=SslMode.REQUIRE, region="eu-west-1")
        result = await check(target, TargetState(token=SecretStr(secret)))
        assert result.ok, result.message
        assert (result.details["login"], result.details["iam_grant"]) == ("iam", granted)
    target = target_for(pg_tls_admin.server, member, iam_auth=True, sslmode=SslMode.REQUIRE, region="eu-west-1")
    rejected = await check(target, TargetState(token=SecretStr(random_password())))
    assert (rejected.reason, rejected.code) == (Reason.AUTH, "pg:28P01")
    assert f"GRANT rds_iam TO {member};" in rejected.hint and "rds-db:connect" in rejected.hint


async def test_missing_secret_or_token_is_reported_without_a_login(pg_server: Server) -> None:
    result = await check(target_for(pg_server, "app", secret_id=SECRET_ID))
    assert (result.ok, result.code) == (False, "db:no_secret")
    iam = target_for(pg_server, "app", iam_auth=True, sslmode=SslMode.REQUIRE, region="eu-west-1")
    assert (await check(iam)).code == "db:no_token"


# -- continuous mode -----------------------------------------------------------------------------------------


async def test_kept_connection_is_pinged_not_reopened(pg_admin: PgAdmin) -> None:
    user, password = await user_with_password(pg_admin)
    target = target_for(pg_admin.server, user, password=SecretStr(password), database="postgres")
    probe = DatabaseProbe(target, TargetState(), timeout=TIMEOUT, keep_connection=True, reauth_seconds=300)
    try:
        first, second, third = [await run_probe(probe, TIMEOUT) for _ in range(3)]
        assert [r.details["connection"] for r in (first, second, third)] == ["new", "kept", "kept"]
        assert third.details["user"] == user and third.details["login"] == "static"
        assert len(await pg_admin.pids(user)) == 1
        assert opened(target) == 1
    finally:
        await probe.close()
    assert await pg_admin.settle(user, 0) == []


async def test_killed_kept_connection_is_replaced_in_the_same_run(pg_admin: PgAdmin) -> None:
    user, password = await user_with_password(pg_admin)
    target = target_for(pg_admin.server, user, password=SecretStr(password), database="postgres")
    probe = DatabaseProbe(target, TargetState(), timeout=TIMEOUT, keep_connection=True)
    try:
        assert (await run_probe(probe, TIMEOUT)).ok
        [old_pid] = await pg_admin.pids(user)
        await pg_admin.terminate(old_pid)
        await pg_admin.settle(user, 0)
        result = await run_probe(probe, TIMEOUT)
        assert result.ok, result.message
        assert result.details["connection"] == "new"
        [new_pid] = await pg_admin.pids(user)
        assert new_pid != old_pid
        assert opened(target) == 2
    finally:
        await probe.close()


async def test_reauth_opens_a_new_connection_and_closes_the_old(pg_admin: PgAdmin) -> None:
    user, password = await user_with_password(pg_admin)
    target = target_for(pg_admin.server, user, password=SecretStr(password), database="postgres")
    probe = DatabaseProbe(target, TargetState(), timeout=TIMEOUT, keep_connection=True, reauth_seconds=0.2)
    try:
        assert (await run_probe(probe, TIMEOUT)).details["connection"] == "new"
        [old_pid] = await pg_admin.pids(user)
        assert (await run_probe(probe, TIMEOUT)).details["connection"] == "kept"
        await asyncio.sleep(0.25)
        result = await run_probe(probe, TIMEOUT)
        assert result.details["connection"] == "new"
        [new_pid] = await pg_admin.settle(user, 1)
        assert new_pid != old_pid
        assert opened(target) == 2
    finally:
        await probe.close()
    assert await pg_admin.settle(user, 0) == []


async def test_reauth_with_a_changed_password_fails_and_keeps_nothing(pg_admin: PgAdmin) -> None:
    """A rotated password is noticed at the next fresh login, not hidden by the kept connection."""
    user, password = await user_with_password(pg_admin)
    target = target_for(pg_admin.server, user, password=SecretStr(password), database="postgres")
    probe = DatabaseProbe(target, TargetState(), timeout=TIMEOUT, keep_connection=True, reauth_seconds=0.1)
    assert (await run_probe(probe, TIMEOUT)).ok
    await pg_admin.set_password(user, random_password())
    await asyncio.sleep(0.15)
    result = await run_probe(probe, TIMEOUT)
    assert (result.reason, result.code) == (Reason.AUTH, "pg:28P01")
    assert await pg_admin.settle(user, 0) == []


async def test_failing_runs_never_leave_sessions_behind(pg_admin: PgAdmin) -> None:
    user, password = await user_with_password(pg_admin)
    good = target_for(pg_admin.server, user, password=SecretStr(password), database="postgres")
    bad_db = target_for(pg_admin.server, user, password=SecretStr(password), database="eha_missing")
    drift = target_for(pg_admin.server, user, password=SecretStr("stale-password"), secret_id=SECRET_ID)
    for _ in range(5):
        assert (await check(good)).ok
        assert not (await check(bad_db)).ok
        assert not (await check(drift, TargetState(secret_password=SecretStr(password)))).ok
    assert await pg_admin.settle(user, 0) == []


async def test_server_restart_breaks_the_kept_connection_and_the_next_run_logs_in_again() -> None:
    """A reboot or failover ends every session: that must not read as a failure once a fresh login works."""
    with PostgresSandbox() as cluster:
        server = Server(Engine.POSTGRESQL, cluster.host, cluster.port, cluster.admin_user, "", "postgres")
        admin_conn = await asyncpg.connect(host=server.host, port=server.port, user="postgres", ssl=False)
        password = random_password()
        await admin_conn.execute(f"CREATE ROLE eha_app LOGIN PASSWORD '{password}'")
        await admin_conn.close()
        target = target_for(server, "eha_app", password=SecretStr(password))
        probe = DatabaseProbe(target, TargetState(), timeout=TIMEOUT, keep_connection=True)
        try:
            assert (await run_probe(probe, TIMEOUT)).ok
            await asyncio.to_thread(cluster.restart)
            result = await run_probe(probe, TIMEOUT)
            assert result.ok, result.message
            assert result.details["connection"] == "new" and opened(target) == 2
        finally:
            await probe.close()


def pacing(spread: float, threshold: int = 2, interval: float = 0.1, cap: float = 30.0) -> LoginPacing:
    """Login pacing with a seeded generator: its first draw is 0.844 of the range (0.844 x spread)."""
    return LoginPacing(interval, threshold, cap, spread, rng=random.Random(0))


def attempts(target: TargetConfig) -> dict[str, int]:
    """Login attempts so far by outcome, from the agent's own counter."""
    return {o: n for (t, o), n in COUNTERS.db_login_attempts.items() if t == target.name}


async def test_a_kept_connection_the_server_ends_is_noticed_at_once_and_the_relogin_is_spread(
    pg_admin: PgAdmin,
) -> None:
    """pg_terminate_backend fires the close event within 1 s; the next run fails without a login
    (db:connection_lost, shared, with the wait and TCP reachability), and logs in once the spread delay passed."""
    user, password = await user_with_password(pg_admin)
    target = target_for(pg_admin.server, user, password=SecretStr(password), database="postgres")
    lost = asyncio.Event()
    probe = DatabaseProbe(
        target, TargetState(), timeout=TIMEOUT, keep_connection=True, pacing=pacing(0.6), on_lost=lost.set
    )
    try:
        assert (await run_probe(probe, TIMEOUT)).ok
        [pid] = await pg_admin.pids(user)
        ended = time.monotonic()
        await pg_admin.terminate(pid)
        await asyncio.wait_for(lost.wait(), 1.0)
        assert time.monotonic() - ended < 1.0
        result = await run_probe(probe, TIMEOUT)
        assert (result.ok, result.reason, result.code, result.scope) == (
            False,
            Reason.NETWORK,
            "db:connection_lost",
            Scope.SHARED,
        )
        assert "accepts TCP connections again" in result.message
        assert 0.3 < float(result.details["login_backoff_seconds"]) <= 0.6 * 0.844
        assert (opened(target), attempts(target)) == (1, {"success": 1})  # no login yet
        await asyncio.sleep(0.6)
        result = await run_probe(probe, TIMEOUT)
        assert result.ok and result.details["connection"] == "new", result.message
        assert opened(target) == 2
    finally:
        await probe.close()


async def test_rejected_logins_back_off_after_the_threshold_without_logging_in(pg_admin: PgAdmin) -> None:
    """Past the threshold a rejected login is not retried every run: the failure is repeated (same code and
    scope, with the backoff) until the jittered delay passes; a passing login resets the count."""
    user, _ = await user_with_password(pg_admin)
    wrong_password = random_password()
    wrong = target_for(pg_admin.server, user, password=SecretStr(wrong_password), database="postgres")
    probe = DatabaseProbe(
        wrong, TargetState(), timeout=TIMEOUT, keep_connection=True, pacing=pacing(30.0, threshold=2, interval=1.0)
    )
    first, second, third = [await run_probe(probe, TIMEOUT) for _ in range(3)]
    assert [r.code for r in (first, second, third)] == ["pg:28P01"] * 3
    assert attempts(wrong) == {"auth": 2}  # the third run is inside the backoff (0.844 x 2 s)
    assert third.scope is Scope.TASK and "backing off" in third.message and "after 2 rejected logins" in third.message
    assert 0 < float(third.details["login_backoff_seconds"]) <= 2.0
    assert "backing off" not in second.message and "login_backoff_seconds" not in second.details
    await asyncio.sleep(1.8)
    assert (await run_probe(probe, TIMEOUT)).code == "pg:28P01"
    assert attempts(wrong) == {"auth": 3}
    await pg_admin.set_password(user, wrong_password)  # the task's password becomes the right one
    held = await run_probe(probe, TIMEOUT)  # inside the new backoff: says how long it still is
    await asyncio.sleep(float(held.details["login_backoff_seconds"]) + 0.1)
    assert (await run_probe(probe, TIMEOUT)).ok
    await pg_admin.set_password(user, random_password())
    await asyncio.sleep(0.05)
    await probe.close()  # the next run must log in again
    rejected = await run_probe(probe, TIMEOUT)
    assert rejected.code == "pg:28P01" and "backing off" not in rejected.message  # the count started again
    assert attempts(wrong) == {"auth": 4, "success": 1}


async def test_closing_the_kept_connection_ourselves_is_not_a_lost_connection(pg_admin: PgAdmin) -> None:
    """Our own close (shutdown, a due fresh login) must not fire the close event."""
    user, password = await user_with_password(pg_admin)
    target = target_for(pg_admin.server, user, password=SecretStr(password), database="postgres")
    lost = asyncio.Event()
    probe = DatabaseProbe(target, TargetState(), timeout=TIMEOUT, keep_connection=True, on_lost=lost.set)
    assert (await run_probe(probe, TIMEOUT)).ok
    await probe.close()
    await asyncio.sleep(0.2)
    assert not lost.is_set()


async def test_a_kept_connection_that_stops_answering_is_reported_as_a_timeout_while_the_relogin_waits(
    pg_admin: PgAdmin,
) -> None:
    """A hung server (the proxy freezes the kept connection): the ping's timeout is what the probe reports while
    the re-login waits its spread, not a generic lost connection; the hint is the one for a server past TCP."""
    user, password = await user_with_password(pg_admin)
    with fault_proxy(pg_admin.server.host, pg_admin.server.port) as proxy:
        target = target_for(replace(pg_admin.server, port=proxy.port), user, password=SecretStr(password))
        probe = DatabaseProbe(target, TargetState(), timeout=1.0, keep_connection=True, pacing=pacing(30.0))
        try:
            assert (await run_probe(probe, 1.0)).ok
            proxy.set(Fault.HANG)
            result = await run_probe(probe, 1.0)
            assert (result.reason, result.code, result.scope) == (Reason.TIMEOUT, "db:timeout", Scope.SHARED)
            assert "SELECT 1 on the kept connection got no answer in time" in result.message
            assert "logging in again in" in result.message and float(result.details["login_backoff_seconds"]) > 0
            assert "accepted the TCP connection but did not answer" in result.hint
            assert opened(target) == 1
        finally:
            proxy.set(Fault.PASS)
            await probe.close()
