"""The bench's pure parts (wrk parsing, cost arithmetic, the table), without running any benchmark."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from agent.sandbox.postgres import PostgresSandbox
from bench.cost import PerTask, expected_per_task, fleet, mean_spacing, per_day, shortest_cadences_meeting
from bench.latency import parse_wrk
from bench.report import BEGIN, END, Row, render_table, verdict, write_results

WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:8099/ready
  2 threads and 10 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   621.87us  169.55us   4.09ms   86.70%
    Req/Sec   501.93     36.12   580.00     75.00%
  Latency Distribution
     50%  596.00us
     75%  650.00us
     90%  730.00us
     99%    1.27ms
  10034 requests in 10.01s, 1.71MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 12
Requests/sec:   1002.40
Transfer/sec:    174.95KB
"""


def test_parse_wrk_reads_rate_percentiles_and_errors() -> None:
    result = parse_wrk(WRK_OUTPUT)
    assert result.requests == 10034
    assert result.seconds == pytest.approx(10.01)
    assert result.requests_per_second == pytest.approx(1002.40)
    assert result.p50_ms == pytest.approx(0.596)
    assert result.p99_ms == pytest.approx(1.27)
    assert result.max_ms == pytest.approx(4.09)
    assert (result.non_2xx, result.socket_errors) == (12, 3)
    assert "1002 req/s" in result.summary() and "12 non-2xx" in result.summary()


def test_parse_wrk_converts_seconds_and_rejects_other_output() -> None:
    slow = WRK_OUTPUT.replace("1.27ms", "1.50s").replace("4.09ms", "2.00s")
    assert parse_wrk(slow).p99_ms == pytest.approx(1500.0)
    assert parse_wrk(slow).max_ms == pytest.approx(2000.0)
    with pytest.raises(ValueError, match="not wrk"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused")


def test_mean_spacing_skips_the_first_rise_and_counts_multiple_events() -> None:
    assert mean_spacing([10.0, 19.0, 28.0], [1, 1, 1]) == pytest.approx(9.0)
    assert mean_spacing([0.0, 10.0], [3, 2]) == pytest.approx(5.0)  # two events in the second sample
    assert mean_spacing([5.0], [1]) is None


def test_per_day_scales_the_spacing_back_to_real_cadences() -> None:
    # 9 s between calls at cadences divided by 100 = one call every 900 s = 96 a day
    assert per_day(9.0, 100.0) == pytest.approx(96.0)
    assert per_day(None, 100.0) is None


def test_fleet_at_the_defaults_stays_under_both_targets() -> None:
    defaults = PerTask(
        secret_calls_per_day=96, sts_calls_per_day=288, logins_per_day=288, failing_logins_per_second=0.1
    )
    ten_thousand = fleet(defaults, 10_000)
    assert ten_thousand.secret_calls_per_day == pytest.approx(960_000)
    assert ten_thousand.secret_dollars_per_day == pytest.approx(4.80)  # $0.05 per 10,000 calls
    assert ten_thousand.iam_logins_per_second == pytest.approx(33.33, rel=1e-3)
    assert ten_thousand.iam_limit_share == pytest.approx(0.1667, rel=1e-3)  # of 200/s
    assert ten_thousand.failing_iam_logins_per_second == pytest.approx(1000)


def test_expected_rates_and_the_cadences_that_meet_the_targets() -> None:
    expected = expected_per_task(interval=10, secret_refresh=900, db_reauth=300)
    assert expected.secret_calls_per_day == pytest.approx(86_400 / 905)
    bounds = shortest_cadences_meeting(10_000, share=0.2, dollars=5.0)
    assert bounds["db_reauth"] == pytest.approx(250.0)
    assert bounds["secret_refresh"] == pytest.approx(864.0)


def test_verdict_says_met_or_the_gap() -> None:
    assert verdict(0.5000000001, 0.5, " %") == "met"  # float noise at the limit
    assert verdict(79.4, 64.0, " MiB") == "MISSED by 15.4 MiB"
    assert verdict(None, 1.0) == "n/a"


def test_table_escapes_pipes_and_keeps_one_row_per_measure() -> None:
    rows = [Row("Latency", "/ready a|b", "1 ms", target="≤ 5 ms", verdict="met"), Row("Scale", "x", "y")]
    table = render_table(rows).splitlines()
    assert table[0].startswith("| Measure | ecs-health-agent | postgres_exporter")
    assert len(table) == 4
    assert "a\\|b" in table[2] and table[2].endswith("| ≤ 5 ms | met |")


def test_results_block_replaces_only_the_generated_part(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    path.write_text(f"# Results\n\nhand-written text\n\n{BEGIN}\nold\n{END}\n\nafter\n")
    write_results(path, f"{BEGIN}\nnew\n{END}")
    text = path.read_text()
    assert "hand-written text" in text and "after" in text
    assert "new" in text and "old" not in text


def test_rss_steps_reads_every_step_of_the_real_serve(pg_cluster: PostgresSandbox, tmp_path: Path) -> None:
    """The breakdown runs serve() in its own interpreter against a real PostgreSQL and reads RSS at each step:
    the imports, the configuration, the first round of probes, the probing window, then trim and caches."""
    import itertools
    import json
    import os
    import subprocess
    import sys

    from bench import rss_steps
    from bench.common import clean_env, free_port

    out = tmp_path / "steps.json"
    env = clean_env(
        {
            "AGENT_DB_DSN": pg_cluster.admin_dsn(),
            "AGENT_DB_PASSWORD": "not-checked-by-trust",
            "AGENT_HOST": "127.0.0.1",
            "AGENT_PORT": str(free_port()),
            "AGENT_INTERVAL_SECONDS": "1",
            "AGENT_SHUTDOWN_GRACE_SECONDS": "0",
            "PYTHONPATH": os.pathsep.join(sys.path),
        }
    )
    command = [sys.executable, "-m", "bench.rss_steps", "--out", str(out), "--seconds", "1"]
    subprocess.run(command, env=env, capture_output=True, timeout=90, check=True)
    steps = json.loads(out.read_text())
    labels = [label for label, _ in steps]
    assert labels[: len(rss_steps.STEPS) + 1] == ["Python interpreter", *(s[0] for s in rss_steps.STEPS)]
    assert labels[len(rss_steps.STEPS) + 1 :] == [
        "the configuration (environment and YAML, validated)",
        "first round of probes (logins, STS, the secret, EMF) and the HTTP server",
        "after 1 s of probing",
        "the allocator: after malloc_trim(0) (free memory glibc kept)",
        "the loaders' caches: after clearing them, collecting and trimming",
    ]  # no AWS step: this configuration has no AWS feature
    assert all(later >= earlier - 3 for (_, earlier), (_, later) in itertools.pairwise(steps))
    assert 5 < steps[0][1] < steps[-1][1] < 200


def test_breakdown_rows_show_each_steps_rss_and_what_it_added() -> None:
    from bench.breakdown import MEASURE, step_rows

    rows = step_rows([("Python interpreter", 11.5), ("aiohttp", 36.0), ("after trim", 35.2)])
    assert [(r.measure, r.agent) for r in rows] == [
        (f"{MEASURE}: Python interpreter", "11.5 MiB"),
        (f"{MEASURE}: aiohttp", "36.0 MiB (+24.5)"),
        (f"{MEASURE}: after trim", "35.2 MiB (-0.8)"),
    ]


def test_login_storm_model_runs_the_agents_pacing_and_meets_its_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    """bench/storm.py models a fleet with agent.probes.pacing itself: at the defaults 1,000 tasks stay under 20 %
    of RDS's 200 IAM logins/s in every situation; with the backoff patched out, the rejected rate is the old one."""
    from agent.probes.pacing import LoginPacing
    from bench.storm import model

    storm = model(1_000, random.Random(1))
    assert storm.steady < 40 and storm.rejected < 40 and storm.failover_window < 40
    assert storm.rejected_unguarded == 100 and storm.failover_unguarded_peak == 1_000
    monkeypatch.setattr(LoginPacing, "after_rejections", lambda self, rejections: 0.0)
    unguarded = model(1_000, random.Random(1))
    assert unguarded.rejected == pytest.approx(100, rel=0.05)  # every run logs in: tasks / interval
