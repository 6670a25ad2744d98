"""The status page at `/`: rendering and escaping in process, then a live agent in headless Chromium.

Screenshots go to test-artifacts/status-page/; the DOM Chromium saw goes beside the agent's other outputs, so the
session-finish secret scan reads it too.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from agent.config.models import StatusDetail
from agent.outputs.status_page import render_status_page
from agent.probes.base import ProbeResult
from agent.runtime.state import AgentState
from agent.sandbox.aws import CredentialsEndpoint
from agent.shared.reasons import Reason
from tests.support.agent_process import OUTPUT_DIR, REPO, ServedAgent, serving
from tests.support.aws import REGION, AwsEnv, Moto
from tests.support.databases import PgAdmin, Server, random_password
from tests.support.http import IDENTITY, fetch, ready_state, serve
from tests.support.results import PAIRS, make_config, passed
from tests.support.serve import pg_env, wait_status

SCREENSHOTS = REPO / "test-artifacts" / "status-page"
CHROMIUM_TIMEOUT = 60.0  # a cold start on a busy 2-core machine takes a few seconds; a hang must not stall CI
NOW = 1_900_000_000.0
HOSTILE = '<script>alert("x")</script> & <img src=x onerror=alert(1)> "quoted"'
VOID = {"br", "meta", "img", "hr", "input", "link"}


class Page(HTMLParser):
    """What a person sees: the status, each probe row's cells by class, and page-level text by class."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.status = ""
        self.rows: list[dict[str, str]] = []
        self.text: dict[str, str] = {}
        self.tags: list[str] = []
        self._stack: list[tuple[str, str | None]] = []
        self._row: dict[str, str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.append(tag)
        if tag == "tr" and "data-probe" in found:
            self._row = {"probe_attr": found["data-probe"] or "", "result_attr": found["data-result"] or ""}
            self.rows.append(self._row)
        if found.get("id") == "status":
            self.status = found.get("data-status") or ""
        if tag not in VOID:
            self._stack.append((tag, found.get("class")))

    def handle_endtag(self, tag: str) -> None:
        while self._stack and self._stack.pop()[0] != tag:
            pass
        if tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        target = self._row if self._row is not None else self.text
        for _, cls in self._stack:
            if cls:
                for name in cls.split():
                    target[name] = target.get(name, "") + data

    def row(self, probe: str, target: str) -> dict[str, str]:
        return next(r for r in self.rows if (r["probe"], r["target"]) == (probe, target))


# -- rendering, in process -----------------------------------------------------------------------------------


def hostile_state(**config: Any) -> AgentState:
    state = AgentState(make_config(failure_threshold=1, **config), PAIRS)
    state.record(passed("credentials", "aws", details={**IDENTITY, "arn": "arn:aws:sts::1:assumed-role/<b>x</b>"}))
    state.record(ProbeResult("db", "writer", False, Reason.AUTH, "pg:28P01", HOSTILE, "hint " + HOSTILE, 41.0))
    return state


def test_everything_from_outside_is_escaped() -> None:
    """Driver messages and ARNs are text: no element of theirs reaches the DOM."""
    html = render_status_page(hostile_state().snapshot(), True, NOW)
    page = Page(html)
    assert "script" not in page.tags and "img" not in page.tags and "b" not in page.tags
    assert page.row("db", "writer")["message"] == HOSTILE
    assert page.row("db", "writer")["hint"] == "hint " + HOSTILE
    assert page.text["arn"] == "arn:aws:sts::1:assumed-role/<b>x</b>"
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_rows_marks_and_times_read_without_colour() -> None:
    """Each row says PASS/FAIL in words; last success is relative and ISO; consecutive failures shown."""
    state = AgentState(make_config(failure_threshold=1), PAIRS)
    state.record(ProbeResult("credentials", "aws", True, None, "ok", "", "", 5.0, NOW - 90, IDENTITY))
    state.record(ProbeResult("db", "writer", False, Reason.NETWORK, "pg:refused", "refused", "", 2.0, NOW - 3))
    page = Page(render_status_page(state.snapshot(), True, NOW))
    creds, db = page.row("credentials", "aws"), page.row("db", "writer")
    assert (creds["result_attr"], creds["mark"], creds["last-success"]) == (
        "pass",
        "\u2713 PASS",
        "90 s ago2030-03-17T17:45:10Z",
    )
    assert (db["mark"], db["reason"], db["code"], db["failures"], db["last-success"]) == (
        "\u2717 FAIL",
        "network",
        "pg:refused",
        "1",
        "never",
    )
    assert page.status == "starting" and "STARTING" in page.text["banner"]  # gate: network never blocks alone
    assert page.text["version"] and page.text["provider"] == "container-role"
    assert page.text["expiry"] == "EXPIRED 74 days ago2030-01-02T03:04:05Z"


def test_the_identity_says_the_clock_skew_and_marks_it_beyond_the_limit() -> None:
    """AWS's clock against the task's (the Date of AWS's answers): unknown before one, plain within 240 s, bold
    with SigV4's consequence beyond it."""
    state = AgentState(make_config(), PAIRS)
    state.record(ProbeResult("credentials", "aws", True, None, "ok", "", "", 5.0, NOW - 90, IDENTITY))
    snapshot = state.snapshot()
    for skew, shown in [
        (None, "not known yet (no AWS answer)"),
        (-120.7, "AWS is 121 s behind this task's clock"),
        (359.2, "AWS is 359 s ahead of this task's clock: past 300 s AWS refuses every signed request"),
    ]:
        page = Page(render_status_page(replace(snapshot, clock_skew_seconds=skew), True, NOW))
        assert page.text["clock-skew"] == shown


def test_summary_detail_shows_no_message_hint_or_identity() -> None:
    html = render_status_page(hostile_state().snapshot(), False, NOW)
    page = Page(html)
    assert "detail" not in page.row("db", "writer") and 'id="aws"' not in html and "assumed-role" not in html
    assert "onerror" not in html and page.row("db", "writer")["reason"] == "auth"


async def test_route_serves_html_with_a_strict_policy_and_head() -> None:
    """GET / is HTML (utf-8, no-store, CSP without script); HEAD answers alike without a body."""
    async with serve(ready_state()) as base:
        reply = await fetch(f"{base}/")
        head = await fetch(f"{base}/", "HEAD")
    assert reply.status == 200 and reply.headers["Content-Type"] == "text/html; charset=utf-8"
    assert reply.headers["Cache-Control"] == "no-store"
    assert "script-src" not in reply.headers["Content-Security-Policy"]
    assert "default-src 'none'" in reply.headers["Content-Security-Policy"]
    assert Page(reply.body.decode()).status == "ready"
    assert (head.status, head.body) == (200, b"")


async def test_route_respects_status_detail_summary() -> None:
    config = make_config(status_detail=StatusDetail.SUMMARY, failure_threshold=1)
    async with serve(hostile_state(status_detail=StatusDetail.SUMMARY), config) as base:
        html = (await fetch(f"{base}/")).body.decode()
    assert "Message and next step" not in html and "AWS identity" not in html and "onerror" not in html


# -- a live agent in headless Chromium ------------------------------------------------------------------------


def chromium(tmp_path: Path, *args: str) -> str:
    """Run headless Chromium once, bounded in time; return its stdout."""
    binary = shutil.which("chromium")
    assert binary, "chromium not found: install the Debian package `chromium` (scripts/setup.sh does)"
    command = [
        binary,
        *("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"),
        *("--disable-background-networking", "--disable-component-update", "--disable-sync"),
        # Hermetic (the tests' resolver lives in Python processes only): every name fails inside Chromium and its
        # own DNS client is off, so it asks no resolver; the page it loads is on a loopback address literal.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--disable-features=AsyncDns",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        *args,
    ]
    # Its own session, so a hung browser and its helper processes can be killed together by group id.
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=CHROMIUM_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError(f"chromium did not finish within {CHROMIUM_TIMEOUT}s") from None
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return out.decode()


async def look(agent: ServedAgent, tmp_path: Path, name: str) -> Page:
    """Load `/` in Chromium: keep a screenshot and the DOM it rendered; return the page as parsed."""
    url = f"http://127.0.0.1:{agent.port}/"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    screenshot = SCREENSHOTS / f"{name}.png"
    screenshot.unlink(missing_ok=True)
    dom = await asyncio.to_thread(chromium, tmp_path, "--dump-dom", url)
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)  # a concurrent pytest session may have just emptied it
    (OUTPUT_DIR / f"status-page-{name}.html").write_text(dom)
    await asyncio.to_thread(chromium, tmp_path, f"--screenshot={screenshot}", "--window-size=1200,800", url)
    assert screenshot.stat().st_size > 10_000, "the screenshot is (nearly) empty"
    return Page(dom)


async def test_live_page_in_a_browser_before_and_after_a_password_change(
    moto_env: AwsEnv,
    moto: Moto,
    credentials_endpoint: CredentialsEndpoint,
    pg_server: Server,
    pg_admin: PgAdmin,
    tmp_path: Path,
) -> None:
    """Task role, secret and database all pass; then the role's password changes: db fails with auth."""
    moto_env.container(credentials_endpoint.url)
    password = random_password()
    user = await pg_admin.role(password)
    name, _ = await moto.secret({"username": user, "password": password})
    env = {**pg_env(pg_server, user, password), "AGENT_DB_SECRET_ID": name, "AWS_REGION": REGION}
    env.pop("AGENT_DB_PASSWORD")
    env.update({"AGENT_DB_REAUTH_SECONDS": "1", "AGENT_INTERVAL_SECONDS": "0.5"})
    async with serving(env) as agent:
        await wait_status(agent, "ready")
        before = await look(agent, tmp_path, "ready")
        assert before.status == "ready" and "READY" in before.text["banner"]
        assert [(r["probe"], r["target"], r["mark"]) for r in before.rows] == [
            ("credentials", "aws", "\u2713 PASS"),
            ("secret", "default", "\u2713 PASS"),
            ("db", "default", "\u2713 PASS"),
        ]
        assert before.text["arn"].startswith("arn:aws:sts::") and ":assumed-role/" in before.text["arn"]
        assert before.text["provider"] == "container-role" and before.text["expiry"].startswith("in ")
        await pg_admin.set_password(user, random_password())
        await wait_status(agent, "not_ready")
        after = await look(agent, tmp_path, "failing")
    assert after.status == "not_ready" and "NOT READY" in after.text["banner"]
    db = after.row("db", "default")
    assert (db["result_attr"], db["mark"], db["reason"], db["code"]) == ("fail", "\u2717 FAIL", "auth", "pg:28P01")
    assert user in db["message"] and db["hint"] and int(db["failures"]) >= 2
    assert "ago" in db["last-success"] and "Z" in db["last-success"]
    assert [r["result_attr"] for r in after.rows] == ["pass", "pass", "fail"]
    assert after.text["failing"] == "Failing: db (default): auth"
