"""A pass the server never checked, end to end (issue 13, section 3): with pg_hba.conf trust and a wrong
AGENT_DB_PASSWORD, `check` still exits 0, and `check`, `/status` and the status page say that the login worked
and a wrong password would have worked too. A real trust-auth PostgreSQL (the throwaway cluster's admin)."""

from __future__ import annotations

import asyncio
import html
import json

from agent.config.dsn import Engine
from agent.sandbox.postgres import PostgresSandbox
from tests.support.agent_process import run_agent, serving
from tests.support.databases import Server, random_password
from tests.support.secrets import remember
from tests.support.serve import pg_env, wait_status

NOTE = (
    "the login worked, but the server never asked for a password (pg_hba.conf trust, or cert or peer "
    "authentication): a wrong password would have worked too"
)


def trusted(cluster: PostgresSandbox) -> tuple[Server, dict[str, str]]:
    server = Server(Engine.POSTGRESQL, cluster.host, cluster.port, cluster.admin_user, "", "postgres")
    return server, pg_env(server, cluster.admin_user, remember(random_password()))


async def test_check_passes_and_says_the_password_was_never_checked(pg_cluster: PostgresSandbox) -> None:
    _, env = trusted(pg_cluster)
    text = await asyncio.to_thread(run_agent, "check", env=env)
    assert text.returncode == 0, text.stdout + text.stderr
    assert f"note: {NOTE}" in text.stdout and "password_checked=no" in text.stdout
    as_json = await asyncio.to_thread(run_agent, "check", "--json", env=env)
    [db] = [p for p in json.loads(as_json.stdout)["probes"] if p["probe"] == "db"]
    assert (as_json.returncode, db["ok"], db["message"]) == (0, True, NOTE)


async def test_status_and_the_page_say_so(pg_cluster: PostgresSandbox) -> None:
    _, env = trusted(pg_cluster)
    async with serving(env) as agent:
        body = await wait_status(agent, "ready")
        [db] = [p for p in body["probes"] if p["probe"] == "db"]
        assert (db["ok"], db["message"]) == (True, NOTE)
        page = await asyncio.to_thread(agent.get, "/")
    assert page.status == 200 and html.escape(NOTE) in page.body.decode()
