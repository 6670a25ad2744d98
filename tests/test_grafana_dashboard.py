"""ecs/grafana/health-agent.json: every PromQL expression passes promtool (as a generated rule file), and every
metric it reads is one the real agent exposes on /metrics (a `serve` process against real PostgreSQL and moto)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from agent.sandbox.aws import CredentialsEndpoint
from agent.sandbox.postgres import PostgresSandbox
from tests.support.agent_process import serving
from tests.support.aws import REGION, AwsEnv, Moto
from tests.support.databases import PgAdmin, random_password
from tests.support.serve import FAST
from tests.test_deploy_files import PROMTOOL_HELP, tool

REPO = Path(__file__).resolve().parents[1]
DASHBOARD = REPO / "ecs" / "grafana" / "health-agent.json"
SCRAPE = REPO / "ecs" / "prometheus" / "scrape.yml"
# What Grafana puts in place of its variables, for promtool: any value a regex matcher accepts, a rate window.
SUBSTITUTES = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h", "ecs_service": ".*", "target": ".*"}
LABEL_VALUES = re.compile(r"label_values\((?P<selector>.+),\s*(?P<label>\w+)\)")


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def variables() -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard()["templating"]["list"]}


def substituted(expr: str) -> str:
    """expr with every Grafana variable ($name, ${name}, [[name]]) replaced by SUBSTITUTES; fails on others."""

    def one(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        assert name in SUBSTITUTES, f"unknown variable ${name} in {expr}"
        return SUBSTITUTES[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)|\[\[(\w+)\]\]", one, expr)


def expressions() -> dict[str, str]:
    """Every PromQL expression of the dashboard, variables substituted, by where it is: panel targets, and the
    selectors of the query variables' label_values() (as `group by (label) (selector)`)."""
    found = {
        f"{panel['title']} {target['refId']}": substituted(target["expr"])
        for panel in panels()
        for target in panel["targets"]
    }
    for name, variable in variables().items():
        if variable["type"] == "query":
            match = LABEL_VALUES.fullmatch(variable["query"]["query"])
            assert match, f"${name}: expected label_values(selector, label)"
            found[f"${name}"] = substituted(f"group by ({match['label']}) ({match['selector']})")
    return found


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (PromQL's own grammar: promql-parser's AST)."""
    names: set[str] = set()

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def dashboard_metrics() -> set[str]:
    return {name for expr in expressions().values() for name in metric_names(expr)}


def promtool_check(exprs: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`promtool check rules` on one recording rule per expression."""
    rules = [{"record": f"dashboard:expression_{i}", "expr": expr} for i, expr in enumerate(exprs.values())]
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "grafana-dashboard", "rules": rules}]}, sort_keys=False))
    command = [tool("promtool", PROMTOOL_HELP), "check", "rules", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


# -- the dashboard's shape --------------------------------------------------------------------------------------


def test_every_query_uses_the_datasource_variable() -> None:
    (source,) = [v for v in variables().values() if v["type"] == "datasource"]
    assert (source["name"], source["query"]) == ("datasource", "prometheus")
    uses = [panel["datasource"] for panel in panels()] + [t["datasource"] for p in panels() for t in p["targets"]]
    uses += [v["datasource"] for v in variables().values() if v["type"] == "query"]
    assert uses and all(use == {"type": "prometheus", "uid": "${datasource}"} for use in uses)


def test_the_service_variable_reads_the_label_the_scrape_config_sets() -> None:
    """$ecs_service is the label ecs/prometheus/scrape.yml relabels the Cloud Map name into; $target the agent's."""
    (job,) = yaml.safe_load(SCRAPE.read_text())["scrape_configs"]
    labels = {rule["target_label"] for rule in job["relabel_configs"] if "target_label" in rule}
    assert "ecs_service" in labels
    service, target = variables()["ecs_service"], variables()["target"]
    assert LABEL_VALUES.fullmatch(service["query"]["query"])["label"] == "ecs_service"  # type: ignore[index]
    assert LABEL_VALUES.fullmatch(target["query"]["query"])["label"] == "target"  # type: ignore[index]
    for panel in panels():
        for target_query in panel["targets"]:
            assert 'ecs_service=~"$ecs_service"' in target_query["expr"], panel["title"]


def test_panels_cover_the_subjects_and_fit_the_grid() -> None:
    titles = " | ".join(p["title"] for p in panels()).lower()
    for subject in ("ready", "reason and scope", "duration", "credentials", "certificate", "password", "headroom"):
        assert subject in titles, subject
    assert dashboard()["schemaVersion"] >= 39
    ids = [p["id"] for p in dashboard()["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard()["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]


# -- promtool ---------------------------------------------------------------------------------------------------


def test_every_expression_passes_promtool(tmp_path: Path) -> None:
    exprs = expressions()
    assert len(exprs) >= 15
    proc = promtool_check(exprs, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(exprs)} rules found" in proc.stdout


def test_the_promtool_check_is_real(tmp_path: Path) -> None:
    """A broken expression fails the same check, so a pass above means something."""
    proc = promtool_check({"broken": "sum by (ecs_service) (rate(health_agent_ready[1m])"}, tmp_path)
    assert proc.returncode != 0 and "parse error" in proc.stdout + proc.stderr


def test_metric_names_come_from_the_promql_grammar() -> None:
    """Names in label matchers, grouping clauses and functions are not mistaken for metrics."""
    expr = 'max by (target) (a_total{target="b_total"} / on (job) c) - time() + histogram_quantile(0.9, d_bucket)'
    assert metric_names(expr) == {"a_total", "c", "d_bucket"}


# -- the real /metrics ------------------------------------------------------------------------------------------


@pytest.fixture
async def exposed(
    moto_env: AwsEnv,
    moto: Moto,
    credentials_endpoint: CredentialsEndpoint,
    pg_tls_cluster: PostgresSandbox,
    pg_tls_admin: PgAdmin,
    tmp_path: Path,
) -> set[str]:
    """The series names a real `serve` exposes: AWS credentials from a container endpoint, a secret in moto, a
    TLS login whose role has a password expiry, and a second, optional target that fails (so the failure counters
    have samples): everything the dashboard reads."""
    moto_env.container(credentials_endpoint.url)
    password = random_password()
    user = await pg_tls_admin.role(password)
    await pg_tls_admin.conn.execute(f"ALTER ROLE {user} VALID UNTIL '2099-01-01'")
    secret, _ = await moto.secret({"username": user, "password": password})
    base = f"127.0.0.1:{pg_tls_cluster.port}/postgres?sslmode=require"
    config = tmp_path / "agent.yaml"
    text = (
        "database:\n  connections:\n"
        f"    orders:\n      dsn: postgresql://{user}@{base}\n      secret_id: {secret}\n"
        f"    reports:\n      dsn: postgresql://{user}:{random_password()}@{base}\n      critical: false\n"
    )
    await asyncio.to_thread(config.write_text, text)
    async with serving({**FAST, "AWS_REGION": REGION}, "--config", str(config)) as agent:
        await asyncio.to_thread(agent.wait_for, _both_ran, "/status", 20.0)
        body = (await asyncio.to_thread(agent.get, "/metrics")).body.decode()
    return exposition_names(body)


def _both_ran(status: dict[str, Any]) -> bool:
    db = {p["target"]: p for p in status["probes"] if p["probe"] == "db"}
    return db["orders"].get("ok") is True and db["reports"].get("consecutive_failures", 0) >= 1


def exposition_names(text: str) -> set[str]:
    """Every series name with a sample in a text exposition."""
    return {line.split("{", 1)[0].split(" ", 1)[0] for line in text.splitlines() if line and not line.startswith("#")}


async def test_every_metric_the_dashboard_reads_is_exposed_by_the_real_agent(exposed: set[str]) -> None:
    """Every name the dashboard reads is on a real agent's /metrics: the facts a TLS login to a role with VALID
    UNTIL reads (certificate, password expiry, connections, read-only) and the clock skew of its AWS calls too."""
    missing = await asyncio.to_thread(dashboard_metrics) - exposed
    assert not missing, f"not on the agent's /metrics: {sorted(missing)}"
    facts = {"db_certificate_expiry_timestamp_seconds", "db_password_expiry_timestamp_seconds", "db_read_only"}
    facts |= {"db_connections", "db_max_connections", "clock_skew_seconds"}
    assert {f"health_agent_{name}" for name in facts} <= exposed
    assert "health_agent_aws_credentials_expiry_timestamp_seconds" in exposed
    assert "health_agent_probe_failures_total" in exposed and "health_agent_probe_duration_seconds_bucket" in exposed
