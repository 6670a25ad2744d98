"""What a database login read (agent.probes.db_facts), as every output shows it: /metrics (checked by promtool),
/status, the status page and `check`, kept while later runs fail."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agent.outputs.metrics import build_registry, render
from agent.outputs.report import as_checklist, as_json
from agent.outputs.status_page import render_status_page
from agent.probes.db_facts import DbFacts, iso
from agent.runtime.state import AgentState
from tests.outputs.test_metrics import PROMTOOL_PACKAGE, parse, value
from tests.support.http import fetch, ready_state, serve
from tests.support.results import failed, make_config, passed, view

DAY = 86400


def facts_details(now: float, *, cert_days: float = 200, password_days: float = 100, used: int = 10) -> dict[str, str]:
    """Details as the database probe gives them: a certificate, a password expiry and the connection count."""
    moment = datetime.fromtimestamp(now, UTC)
    return {
        "server_version": "16.4",
        "resolved_address": "10.0.3.17",
        "read_only": "no",
        "certificate_not_after": iso(moment + timedelta(days=cert_days)),
        "certificate_subject": "CN=db.example.internal",
        "certificate_issuer": "CN=Amazon RDS eu-west-1 Root CA RSA2048 G1",
        "password_expires_at": iso(moment + timedelta(days=password_days)),
        "connections": str(used),
        "max_connections": "97",
    }


def test_facts_read_back_from_details() -> None:
    """Every detail key parses back to its typed value; a value that does not parse counts as absent."""
    now = time.time()
    facts = DbFacts.from_details(facts_details(now))
    assert facts.resolved_address == "10.0.3.17" and facts.read_only is False
    assert facts.connections == 10 and facts.max_connections == 97
    assert facts.certificate_not_after is not None and facts.certificate_not_after.tzinfo is not None
    assert facts.certificate_not_after.timestamp() == pytest.approx(now + 200 * DAY, abs=1)
    assert facts.warnings(now) == []
    odd = DbFacts.from_details({"password_expires_at": "unknown (no SELECT on mysql.user)", "connections": "x"})
    assert odd.password_expires_at is None and odd.password_expiry == "unknown (no SELECT on mysql.user)"
    assert odd.connections is None and not odd.empty
    assert DbFacts.from_details({"server_version": "16.4", "tls": "TLSv1.3"}).empty


@pytest.mark.parametrize(
    ("change", "warning"),
    [
        ({"cert_days": 10}, "the server's TLS certificate expires in 10.0 days"),
        ({"cert_days": -1}, "the server's TLS certificate expired on"),
        ({"password_days": 7}, "the login's password expires in 7.0 days"),
        ({"password_days": -0.5}, "the login's password expired on"),
        ({"used": 88}, "88 of 97 connections in use (91%)"),
    ],
)
def test_each_warning_starts_at_its_threshold(change: dict[str, Any], warning: str) -> None:
    """Certificate within 30 days, password within 14, 90 % of the connections: one warning each, and only then."""
    now = time.time()
    warnings = DbFacts.from_details(facts_details(now, **change)).warnings(now)
    assert len(warnings) == 1 and warnings[0].startswith(warning), warnings
    boundary: dict[str, Any] = {"cert_days": 31, "password_days": 15, "used": 87}
    key = next(iter(change))
    assert DbFacts.from_details(facts_details(now, **{key: boundary[key]})).warnings(now) == []


async def test_metrics_status_and_page_show_the_facts_and_keep_them_through_a_failure() -> None:
    """/metrics has one gauge per fact (promtool accepts it), /status a `database` entry with the warnings, the
    page a Databases section; a later failed run that read nothing keeps the last known facts."""
    now = time.time()
    state = ready_state(make_config(failure_threshold=3))
    state.record(passed(details=facts_details(now, cert_days=10, used=90)))
    state.record(failed())
    async with serve(state) as base:
        metrics = await fetch(f"{base}/metrics")
        status = (await fetch(f"{base}/status")).body
    samples = parse(metrics.body.decode())
    assert value(samples, "health_agent_db_read_only", target="writer") == 0
    assert value(samples, "health_agent_db_connections", target="writer") == 90
    assert value(samples, "health_agent_db_max_connections", target="writer") == 97
    expiry = value(samples, "health_agent_db_certificate_expiry_timestamp_seconds", target="writer")
    assert expiry == pytest.approx(now + 10 * DAY, abs=1)
    password = value(samples, "health_agent_db_password_expiry_timestamp_seconds", target="writer")
    assert password == pytest.approx(now + 100 * DAY, abs=1)
    await _promtool_check(metrics.body)
    entry = next(p for p in status["probes"] if p["probe"] == "db")
    database = entry["database"]
    assert database["resolved_address"] == "10.0.3.17" and database["read_only"] is False
    assert database["certificate"]["issuer"] == "CN=Amazon RDS eu-west-1 Root CA RSA2048 G1"
    assert [w.split(" in ")[0] for w in database["warnings"]] == [
        "the server's TLS certificate expires",
        "90 of 97 connections",
    ]
    page = render_status_page(state.snapshot(), full=True, now=now)
    assert '<section id="databases">' in page and "Amazon RDS eu-west-1 Root CA" in page and "90 of 97" in page
    assert view(state).facts.connections == 90


def test_check_prints_and_returns_the_warnings() -> None:
    """`check` prints each warning under the database line; --json carries the same `database` entry."""
    now = time.time()
    result = passed(details=facts_details(now, password_days=3))
    text = as_checklist([result])
    assert "        warning: the login's password expires in 3.0 days, on " in text
    document = json.loads(as_json([result]))
    assert (
        document["probes"][0]["database"]["password_expires_at"]
        == facts_details(now, password_days=3)["password_expires_at"]
    )
    assert len(document["probes"][0]["database"]["warnings"]) == 1


def test_probes_without_facts_add_nothing() -> None:
    """A state with no database facts has no db_* fact gauges and no `database` entry."""
    state = AgentState(make_config(), [("db", "writer")])
    state.record(passed(details={"server_version": "16.4"}))
    samples = parse(render(build_registry(state)).decode())
    assert not any(name.startswith("health_agent_db_read_only") for name, _ in samples)
    assert "database" not in json.loads(as_json([passed()]))["probes"][0]


async def _promtool_check(exposition: bytes) -> None:
    promtool = await asyncio.to_thread(shutil.which, "promtool")
    if promtool is None:
        pytest.fail(f"promtool not found: install the Debian package `{PROMTOOL_PACKAGE}` (gives /usr/bin/promtool)")
    command = [promtool, "check", "metrics"]
    checked = await asyncio.to_thread(subprocess.run, command, input=exposition, capture_output=True, timeout=10)
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
