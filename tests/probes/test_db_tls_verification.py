"""What a login's TLS verified, against the real throwaway PostgreSQL cluster with TLS (a certificate for
localhost and 127.0.0.1, signed by its own CA): the db probe's details, `check` (text and JSON) and /status.

require with a root certificate verifies the chain, as libpq does; without one it only encrypts, and every output
says so. With AGENT_DB_SSLROOTCERT set and no sslmode in the DSN, the default is verify-full.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from pydantic import SecretStr

from agent.config.dsn import SslMode
from agent.outputs.report import as_checklist, as_json
from agent.outputs.status_page import render_status_page
from agent.probes.base import ProbeResult, TargetState
from agent.probes.db import DatabaseProbe
from agent.probes.runner import run_probe
from agent.runtime.state import AgentState
from agent.sandbox.postgres import PostgresSandbox
from agent.shared.reasons import Reason
from tests.support.agent_process import run_agent
from tests.support.auth_standins import self_signed
from tests.support.databases import PgAdmin, random_password, target_for
from tests.support.http import serve, status_and_body
from tests.support.results import make_config
from tests.support.secrets import remember

TIMEOUT = 3.0


async def login(admin: PgAdmin, mode: SslMode, host: str = "127.0.0.1", rootcert: str | None = None) -> ProbeResult:
    password = random_password()
    user = await admin.role(password)
    target = target_for(admin.server, user, host=host, password=SecretStr(password), sslmode=mode, sslrootcert=rootcert)
    return await run_probe(DatabaseProbe(target, TargetState(), timeout=TIMEOUT), TIMEOUT)


async def test_each_sslmode_says_what_its_tls_verified(pg_tls_cluster: PostgresSandbox, pg_tls_admin: PgAdmin) -> None:
    ca = str(pg_tls_cluster.ca_cert)
    cases = [
        (SslMode.PREFER, "127.0.0.1", ca, "no"),  # prefer never verifies, even with a root certificate (libpq)
        (SslMode.REQUIRE, "127.0.0.1", None, "no"),
        (SslMode.REQUIRE, "127.0.0.1", ca, "verify-ca"),  # libpq: require with a root CA file is verify-ca
        (SslMode.VERIFY_CA, "127.0.0.1", ca, "verify-ca"),
        (SslMode.VERIFY_FULL, "localhost", ca, "verify-full"),
    ]
    for mode, host, rootcert, verified in cases:
        result = await login(pg_tls_admin, mode, host, rootcert)
        assert result.ok, f"{mode}: {result.message}"
        assert result.details["tls"].startswith("TLSv1.")
        assert result.details["tls_verified"] == verified, (mode, rootcert)


async def test_require_with_a_root_certificate_rejects_a_server_it_does_not_sign(
    pg_tls_admin: PgAdmin, tmp_path: Path
) -> None:
    """The root certificate is really used: one that did not sign the server's certificate fails the login."""
    _, other_ca = await self_signed(tmp_path)
    result = await login(pg_tls_admin, SslMode.REQUIRE, rootcert=str(other_ca))
    assert (result.reason, result.code) == (Reason.TLS, "db:tls_verify")
    unverified = await login(pg_tls_admin, SslMode.REQUIRE)
    assert unverified.ok and unverified.details["tls_verified"] == "no"


async def test_a_plaintext_login_has_no_verification_to_report(pg_cluster_admin: PgAdmin) -> None:
    result = await login(pg_cluster_admin, SslMode.PREFER)
    assert result.ok and result.details["tls"] == "none"
    assert "tls_verified" not in result.details


async def test_status_page_and_check_say_when_tls_was_not_verified(pg_tls_admin: PgAdmin) -> None:
    unverified = await login(pg_tls_admin, SslMode.REQUIRE)
    state = AgentState(make_config(), [("db", unverified.target)])
    state.record(unverified)
    async with serve(state) as base:
        _, body = await status_and_body(f"{base}/status")
    (entry,) = body["probes"]
    assert entry["tls"] == {"version": unverified.details["tls"], "verified": "no"}
    page = render_status_page(state.snapshot(), True, unverified.finished_at)
    assert "TLS: certificate not verified" in page
    assert "certificate was not verified" in as_checklist([unverified])
    (probe,) = json.loads(as_json([unverified]))["probes"]
    assert probe["tls"]["verified"] == "no"


async def test_verified_logins_carry_no_warning(pg_tls_cluster: PostgresSandbox, pg_tls_admin: PgAdmin) -> None:
    verified = await login(pg_tls_admin, SslMode.VERIFY_FULL, "localhost", str(pg_tls_cluster.ca_cert))
    state = AgentState(make_config(), [("db", verified.target)])
    state.record(verified)
    assert "not verified" not in render_status_page(state.snapshot(), True, verified.finished_at)
    assert "not verified" not in as_checklist([verified])


async def check(env: dict[str, str], *args: str) -> tuple[int, str]:
    proc = await asyncio.to_thread(run_agent, "check", *args, env={"AGENT_TIMEOUT_SECONDS": "3", **env})
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout


async def test_check_with_a_ca_bundle_and_no_sslmode_verifies_the_host_name(
    pg_tls_cluster: PostgresSandbox, pg_tls_admin: PgAdmin
) -> None:
    """AGENT_DB_SSLROOTCERT set, no sslmode: verify-full (the image's default, with the RDS bundle)."""
    password = remember(random_password())
    user = await pg_tls_admin.role(password)
    server = pg_tls_admin.server
    env = {
        "AGENT_DB_DSN": f"postgresql://{user}@{server.host}:{server.port}/postgres",
        "AGENT_DB_PASSWORD": password,
        "AGENT_DB_SSLROOTCERT": str(pg_tls_cluster.ca_cert),
    }
    code, out = await check(env, "--json")
    (db,) = json.loads(out)["probes"]
    assert (code, db["ok"], db["tls"]["verified"]) == (0, True, "verify-full")
    code, out = await check(
        {**env, "AGENT_DB_DSN": env["AGENT_DB_DSN"] + "?sslmode=require", "AGENT_DB_SSLROOTCERT": ""}
    )
    assert code == 0 and "tls_verified=no" in out and "certificate was not verified" in out
