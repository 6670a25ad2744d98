"""The fleet cost run: one every-feature agent at cadences divided by `cost_scale`, its counters sampled, the
spacing of its calls scaled back and multiplied out to 1,000 and 10,000 tasks (see bench.cost)."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import Service, get, sample_sum
from bench.cost import (
    DEFAULTS,
    RDS_IAM_LOGINS_PER_SECOND,
    Fleet,
    PerTask,
    expected_per_task,
    fleet,
    mean_spacing,
    per_day,
    shortest_cadences_meeting,
)
from bench.footprint import every_feature_spec
from bench.report import Row
from bench.settings import Settings
from bench.subjects import agent_probed, start_agent, wait_for
from bench.world import World

SECTION = "Fleet cost"
SAMPLE_EVERY = 0.25
IAM_SHARE_LIMIT, DOLLARS_LIMIT = 0.20, 5.0
FLEETS = (1_000, 10_000)
OLD_MYSQL_IAM_LIMIT = 20.0  # new IAM connections/s, older RDS docs for MySQL (FIELD-NOTES)
# (metric, labels): what each per-task rate is counted by.
COUNTED = {
    "secret": ("health_agent_aws_api_calls_total", {"service": "secretsmanager", "operation": "GetSecretValue"}),
    "sts": ("health_agent_aws_api_calls_total", {"service": "sts", "operation": "GetCallerIdentity"}),
    "logins": ("health_agent_db_connections_opened_total", {"target": "app"}),
    "rejected": ("health_agent_probe_duration_seconds_count", {"probe": "db", "target": "iam"}),
}


@dataclass
class Rises:
    """When a counter was seen to rise, and by how much."""

    last: float | None = None
    times: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)

    def see(self, at: float, value: float) -> None:
        """Record a sample; a rise since the previous one is kept."""
        if self.last is not None and value > self.last:
            self.times.append(at)
            self.counts.append(round(value - self.last))
        self.last = value


def cost_rows(world: World, settings: Settings, workdir: Path) -> tuple[list[Row], list[str]]:
    """Measure one task's call rates, then the fleet rows and the verdicts against the targets."""
    scale = settings.cost_scale
    agent = _start(world, scale, workdir)
    try:
        sampling = _sample(agent, settings.cost_seconds)
    finally:
        agent.stop()
    spacing = {name: mean_spacing(r.times, r.counts) for name, r in sampling.rises.items()}
    too_few = [name for name, value in spacing.items() if value is None]
    if too_few:  # a rate from a single call would be a guess: say so instead of printing zeros
        why = f"fewer than two calls counted for {', '.join(too_few)} in {settings.cost_seconds:g} s"
        return [Row(SECTION, "one task at the defaults", f"n/a ({why})", verdict="n/a")], []
    measured = PerTask(
        secret_calls_per_day=per_day(spacing["secret"], scale) or 0.0,
        sts_calls_per_day=per_day(spacing["sts"], scale) or 0.0,
        logins_per_day=per_day(spacing["logins"], scale) or 0.0,
        failing_logins_per_second=(per_day(spacing["rejected"], scale) or 0.0) / 86_400,
    )
    fleets = [fleet(measured, tasks) for tasks in FLEETS]
    rows = [_per_task_row(measured), *(_fleet_row(f) for f in fleets), _rejected_row(fleets[-1])]
    return rows, _notes(scale, sampling)


def _start(world: World, scale: float, workdir: Path) -> Service:
    cadences = {
        "AGENT_SECRET_REFRESH_SECONDS": f"{DEFAULTS['secret_refresh'] / scale:g}",
        "AGENT_DB_REAUTH_SECONDS": f"{DEFAULTS['db_reauth'] / scale:g}",
    }
    spec = dataclasses.replace(
        every_feature_spec(world), name="agent-cost", interval=DEFAULTS["interval"] / scale, extra_env=cadences
    )
    agent = start_agent(spec, workdir)
    wait_for(agent, lambda: agent_probed(agent), "every probe run once")
    return agent


@dataclass(frozen=True, slots=True)
class Sampling:
    """What the sampling loop saw: the rises per counter, and how many scrapes answered (a gap skews rates)."""

    rises: dict[str, Rises]
    asked: int
    answered: int
    seconds: float


def _sample(agent: Service, seconds: float) -> Sampling:
    """Read the counters every SAMPLE_EVERY seconds for `seconds` (bounded in time and in count)."""
    rises = {name: Rises() for name in COUNTED}
    started = time.monotonic()
    asked = answered = 0
    while time.monotonic() - started < seconds and asked < 2 * seconds / SAMPLE_EVERY:
        began = time.monotonic()
        reply = get(agent.url("/metrics"), timeout=2.0)
        asked += 1
        if reply.status == 200:
            answered += 1
            text = reply.text()
            for name, (metric, labels) in COUNTED.items():
                rises[name].see(began, sample_sum(text, metric, **labels))
        time.sleep(max(0.0, SAMPLE_EVERY - (time.monotonic() - began)))
    return Sampling(rises, asked, answered, time.monotonic() - started)


def _per_task_row(measured: PerTask) -> Row:
    expected = expected_per_task(DEFAULTS["interval"], DEFAULTS["secret_refresh"], DEFAULTS["db_reauth"])
    agent = (
        f"GetSecretValue {measured.secret_calls_per_day:.0f}/day (cadence: {expected.secret_calls_per_day:.0f});"
        f" STS {measured.sts_calls_per_day:.0f}/day ({expected.sts_calls_per_day:.0f});"
        f" fresh logins {measured.logins_per_day:.0f}/day ({expected.logins_per_day:.0f});"
        f" login attempts while rejected {measured.failing_logins_per_second:.2f}/s"
        f" ({expected.failing_logins_per_second:.2f})"
    )
    kept = "no AWS calls; one kept connection, a new login only when it breaks"
    return Row(SECTION, "one task at the defaults, measured (expected)", agent, kept, kept, "no AWS calls; no login")


def _fleet_row(f: Fleet) -> Row:
    agent = (
        f"Secrets Manager {f.secret_calls_per_day:,.0f} calls/day = ${f.secret_dollars_per_day:.2f}/day;"
        f" STS {f.sts_calls_per_day:,.0f}/day; IAM logins {f.iam_logins_per_second:.1f}/s per database"
        f" = {100 * f.iam_limit_share:.1f} % of {RDS_IAM_LOGINS_PER_SECOND:.0f}/s"
    )
    if f.tasks != FLEETS[-1]:
        return Row(SECTION, f"{f.tasks:,} tasks on one database", agent)
    return Row(
        SECTION,
        f"{f.tasks:,} tasks on one database",
        agent,
        target=f"< {100 * IAM_SHARE_LIMIT:.0f} % of the IAM login limit; < ${DOLLARS_LIMIT:g}/day",
        verdict=_fleet_verdict(f),
    )


def _fleet_verdict(f: Fleet) -> str:
    misses = []
    if f.iam_limit_share >= IAM_SHARE_LIMIT:
        misses.append(f"IAM logins by {100 * (f.iam_limit_share - IAM_SHARE_LIMIT):.1f} points")
    if f.secret_dollars_per_day >= DOLLARS_LIMIT:
        misses.append(f"Secrets Manager by ${f.secret_dollars_per_day - DOLLARS_LIMIT:.2f}/day")
    return "met" if not misses else "MISSED: " + ", ".join(misses)


def _rejected_row(f: Fleet) -> Row:
    agent = (
        f"{f.failing_iam_logins_per_second:,.0f} login attempts/s = {100 * f.failing_iam_limit_share:.0f} % of"
        f" {RDS_IAM_LOGINS_PER_SECOND:.0f}/s (one per probe run, no backoff)"
    )
    return Row(SECTION, f"{f.tasks:,} tasks while every IAM login is rejected", agent)


def _span(rises: Rises) -> float:
    return rises.times[-1] - rises.times[0] if len(rises.times) > 1 else 0.0


def _notes(scale: float, sampling: Sampling) -> list[str]:
    bounds = shortest_cadences_meeting(FLEETS[-1], IAM_SHARE_LIMIT, DOLLARS_LIMIT)
    counted = ", ".join(f"{name} {sum(r.counts)} over {_span(r):.0f} s" for name, r in sampling.rises.items())
    seconds = sampling.seconds
    return [
        f"Fleet cost: one every-feature agent ran {seconds:.0f} s with every cadence divided by {scale:g} (interval"
        f" {DEFAULTS['interval'] / scale:.3g} s, secret refresh {DEFAULTS['secret_refresh'] / scale:g} s, fresh"
        f" login and STS check {DEFAULTS['db_reauth'] / scale:g} s), i.e. {seconds * scale / 3600:.1f} h at the"
        f" defaults; {sampling.answered} of {sampling.asked} scrapes of its /metrics answered; calls counted:"
        f" {counted}. The mean spacing between counted calls times"
        f" {scale:g} gives the real rate. The token regeneration (600 s, fixed) signs locally: no call, no login.",
        f"For 10,000 tasks on one database to stay under both targets: AGENT_DB_REAUTH_SECONDS ≥"
        f" {bounds['db_reauth']:.0f} s and AGENT_SECRET_REFRESH_SECONDS ≥ {bounds['secret_refresh']:.0f} s"
        f" (defaults 300 and 900). The 200/s IAM limit is per instance in current RDS docs; older docs say"
        f" {OLD_MYSQL_IAM_LIMIT:.0f}/s for MySQL, against which 10,000 tasks need AGENT_DB_REAUTH_SECONDS ≥"
        f" {FLEETS[-1] / (IAM_SHARE_LIMIT * OLD_MYSQL_IAM_LIMIT):,.0f} s.",
    ]
