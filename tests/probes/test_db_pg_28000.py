"""SQLSTATE 28000 from a real server, each cause with its own code and hint (issue 13, section 5): no pg_hba.conf
rule with and without TLS, a reject rule for plaintext, PAM (RDS's answer to a rejected IAM token), a role that
may not log in, a role that does not exist."""

from __future__ import annotations

from pydantic import SecretStr

from agent.config.dsn import Engine, SslMode
from agent.config.models import TargetConfig
from agent.probes.base import ProbeResult, TargetState
from agent.probes.db import DatabaseProbe
from agent.probes.runner import run_probe
from agent.shared.reasons import Reason, Scope
from tests.support.databases import Server, random_password, target_for
from tests.support.pg_methods import GHOST, NO_RULE_DATABASE, PAM, TLS_ONLY, MethodsAdmin

TIMEOUT = 3.0


def target(admin: MethodsAdmin, user: str, password: str, **fields: object) -> TargetConfig:
    cluster = admin.cluster
    server = Server(Engine.POSTGRESQL, cluster.host, cluster.port, cluster.admin_user, "", "postgres")
    return target_for(server, user, password=SecretStr(password), **fields)


async def check(target: TargetConfig, state: TargetState | None = None) -> ProbeResult:
    return await run_probe(DatabaseProbe(target, state or TargetState(), timeout=TIMEOUT), TIMEOUT)


def assert_28000(result: ProbeResult, code: str, said: str) -> None:
    assert (result.ok, result.reason, result.code, result.scope) == (False, Reason.AUTH, code, Scope.TASK)
    assert said in result.message, result.message


async def test_no_rule_without_tls_says_use_tls(methods_admin: MethodsAdmin) -> None:
    user, password = await methods_admin.role()
    result = await check(target(methods_admin, user, password, database=NO_RULE_DATABASE))
    assert_28000(result, "pg:28000:hba_plaintext", "no pg_hba.conf entry for host")
    assert "no encryption" in result.message
    assert "Set sslmode=require or verify-full" in result.hint and "rds.force_ssl=1" in result.hint


async def test_a_reject_rule_for_plaintext_is_the_same_kind(methods_admin: MethodsAdmin) -> None:
    user, password = await methods_admin.role(TLS_ONLY)
    result = await check(target(methods_admin, user, password))
    assert_28000(result, "pg:28000:hba_plaintext", "pg_hba.conf rejects connection for host")
    over_tls = await check(target(methods_admin, user, password, sslmode=SslMode.REQUIRE))
    assert over_tls.ok, "the same user over TLS matches the scram rule"


async def test_no_rule_over_tls_does_not_say_use_tls(methods_admin: MethodsAdmin) -> None:
    """sslmode=require is already set: the hint is about the rules' user, database and address, not TLS."""
    user, password = await methods_admin.role()
    result = await check(target(methods_admin, user, password, database=NO_RULE_DATABASE, sslmode=SslMode.REQUIRE))
    assert_28000(result, "pg:28000:hba_tls", "SSL encryption")
    assert "although the connection uses TLS" in result.hint and f"database {NO_RULE_DATABASE}" in result.hint
    assert "sslmode=require" not in result.hint and "force_ssl" not in result.hint


async def test_pam_with_a_password_says_rds_iam_expects_a_token(methods_admin: MethodsAdmin) -> None:
    user, password = await methods_admin.role(PAM)
    result = await check(target(methods_admin, user, password, sslmode=SslMode.REQUIRE))
    assert_28000(result, "pg:28000:pam", f'PAM authentication failed for user "{user}"')
    assert "member of rds_iam" in result.hint and "AGENT_DB_IAM_AUTH=true" in result.hint
    assert f"REVOKE rds_iam FROM {user};" in result.hint and "pg_hba" not in result.hint


async def test_pam_with_an_iam_token_gets_the_iam_checklist(methods_admin: MethodsAdmin) -> None:
    """What RDS answers a bad IAM token with: the rds_iam grant, the rds-db:connect resource, and what the token
    was signed for; not pg_hba.conf, not rds.force_ssl, not "use sslmode=require" (it is set)."""
    user, _ = await methods_admin.role(PAM)
    iam = target(methods_admin, user, "", sslmode=SslMode.REQUIRE, iam_auth=True, region="eu-west-1")
    iam = iam.model_copy(update={"password": None})
    result = await check(iam, TargetState(token=SecretStr(f"a-signed-token-{random_password()}")))
    assert_28000(result, "pg:28000:pam", "PAM authentication failed")
    assert f"GRANT rds_iam TO {user};" in result.hint
    assert f"arn:aws:rds-db:eu-west-1:<account-id>:dbuser:<DbiResourceId>/{user}" in result.hint
    port = methods_admin.cluster.port
    assert f"host 127.0.0.1, port {port}, user {user}, region eu-west-1" in result.hint
    assert "pg_hba" not in result.hint and "force_ssl" not in result.hint and "sslmode" not in result.hint


async def test_a_role_that_may_not_log_in(methods_admin: MethodsAdmin) -> None:
    user, password = await methods_admin.role(login=False)
    result = await check(target(methods_admin, user, password))
    assert_28000(result, "pg:28000:nologin", f'role "{user}" is not permitted to log in')
    assert f"ALTER ROLE {user} LOGIN;" in result.hint and "rolcanlogin" in result.hint


async def test_a_role_that_does_not_exist(methods_admin: MethodsAdmin) -> None:
    result = await check(target(methods_admin, GHOST, random_password()))
    assert_28000(result, "pg:28000:no_role", f'role "{GHOST}" does not exist')
    assert f"Role {GHOST} does not exist" in result.hint and f"CREATE ROLE {GHOST} LOGIN;" in result.hint
