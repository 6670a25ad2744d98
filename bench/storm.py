"""The login-storm model: database logins per second for a fleet, run with the agent's own pacing functions.

Every task is simulated run by run at the scheduler's cadence (interval +-10 % jitter, quicker confirmations
after a first failure), and logs in only when agent.probes.pacing lets it: nothing here re-implements the
backoff or the spread. Three situations, at the defaults (10 s interval, threshold 3, AGENT_DB_REAUTH_SECONDS
300, AGENT_DB_RELOGIN_SPREAD_SECONDS 30):

- steady: every login passes; one fresh login per task per AGENT_DB_REAUTH_SECONDS (the kept connection is
  pinged in between);
- all rejected: every login is rejected (a revoked grant, a wrong secret everywhere), measured over the second
  half of an hour, once the backoff has reached its cap;
- after a failover: every kept connection is closed in the same second; each probe wakes itself at its drawn
  re-login moment. Logins per second while they arrive (the mean over the spread window, which the target is
  held against, and the busiest second), and the mean over the first minute.

"Without the guard" gives the same fleet with the pacing off (what the agent did before #17): every task logs in
at every run while rejected, and at once after a failover.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from agent.probes.pacing import DEFAULT_RELOGIN_SPREAD_SECONDS, IAM_LOGINS_PER_SECOND, LoginPacing, spread_for
from agent.runtime.scheduler import JITTER, confirm_delay
from bench.report import Row
from bench.settings import Settings
from bench.world import World

SECTION = "Login storms"
SHARE_LIMIT = 0.20  # of RDS's IAM logins per second per instance
INTERVAL, THRESHOLD, REAUTH, SPREAD = 10.0, 3, 300.0, DEFAULT_RELOGIN_SPREAD_SECONDS  # the agent's defaults
# (tasks, AGENT_DB_RELOGIN_SPREAD_SECONDS, AGENT_DB_REAUTH_SECONDS): the defaults, and what docs/readiness.md tells a
# 10,000-task fleet to set.
FLEETS = ((1_000, SPREAD, REAUTH), (10_000, SPREAD, REAUTH), (10_000, 300.0, 600.0))
REJECTED_HOURS = 1.0


@dataclass(frozen=True, slots=True)
class Storm:
    """Logins per second for one fleet in one situation."""

    tasks: int
    spread: float
    reauth: float
    steady: float
    rejected: float
    rejected_unguarded: float
    failover_window: float  # mean logins/s over the spread window
    failover_peak: float  # the busiest second
    failover_minute: float  # mean logins/s over the first minute
    failover_unguarded_peak: float


def storm_rows(world: World, settings: Settings, workdir: Path) -> tuple[list[Row], list[str]]:
    """The model for 1,000 and 10,000 tasks, with the limit it is held against (no agent process needed)."""
    del world, settings, workdir  # a model: the same figures on any machine
    storms = [model(tasks, random.Random(tasks), spread, reauth) for tasks, spread, reauth in FLEETS]
    rows = [row for storm in storms for row in _rows(storm)]
    notes = [
        f"Login storms: a model, not a measurement: each task run by run with agent.probes.pacing at the"
        f" defaults (interval {INTERVAL:g} s, threshold {THRESHOLD}, reauth {REAUTH:g} s, relogin spread"
        f" {SPREAD:g} s). RDS allows {IAM_LOGINS_PER_SECOND:g} new IAM logins/s per instance; the spread that"
        f" keeps N tasks under {SHARE_LIMIT:.0%} of it after a failover is N / {SHARE_LIMIT * IAM_LOGINS_PER_SECOND:g}"
        f" s ({spread_for(10_000):g} s for 10,000 tasks).",
    ]
    return rows, notes


def model(tasks: int, rng: random.Random, spread: float = SPREAD, reauth: float = REAUTH) -> Storm:
    """Simulate `tasks` agents; `spread` is AGENT_DB_RELOGIN_SPREAD_SECONDS, `reauth` AGENT_DB_REAUTH_SECONDS
    (the fresh-login period, and the backoff's cap)."""
    pacing = LoginPacing(INTERVAL, THRESHOLD, reauth, spread, rng=rng)
    failover = _failover(tasks, pacing)
    return Storm(
        tasks=tasks,
        spread=spread,
        reauth=reauth,
        steady=tasks / reauth,
        rejected=_rejected_rate(tasks, pacing, rng),
        rejected_unguarded=tasks / INTERVAL,
        failover_window=sum(failover.values()) / spread if spread > 0 else float(tasks),
        failover_peak=max(failover.values(), default=0),
        failover_minute=sum(n for second, n in failover.items() if second < 60) / 60,
        failover_unguarded_peak=float(tasks),  # every task's close event fires in the same second
    )


def _rejected_rate(tasks: int, pacing: LoginPacing, rng: random.Random) -> float:
    """Mean logins/s over the second half of REJECTED_HOURS while every login is rejected."""
    horizon = REJECTED_HOURS * 3600
    counted = sum(sum(at >= horizon / 2 for at in logins_while_rejected(pacing, rng, horizon)) for _ in range(tasks))
    return counted / (horizon / 2)


def logins_while_rejected(
    pacing: LoginPacing, rng: random.Random, horizon: float, phase: float | None = None
) -> list[float]:
    """When one task logs in over `horizon` seconds if every login is rejected: its runs at the scheduler's
    cadence (quick confirmations, then the interval, +-10 % jitter), a login at each run the pacing allows.
    `phase` is the first run's time (default: anywhere in the first interval)."""
    interval = pacing.interval_seconds
    confirm = confirm_delay(interval, pacing.failure_threshold)
    at = rng.uniform(0, interval) if phase is None else phase
    rejections, not_before, logins = 0, 0.0, []
    while at < horizon:
        if at >= not_before:  # the probe logs in; otherwise it repeats the last failure without a login
            rejections += 1
            logins.append(at)
            not_before = at + pacing.after_rejections(rejections)
        at += _jittered(confirm if rejections < pacing.failure_threshold else interval, rng)
    return logins


def _failover(tasks: int, pacing: LoginPacing) -> Counter[int]:
    """Logins per second after every kept connection closed at t=0: each at its drawn moment (the probe's own
    timer wakes it then; the runs in between report db:connection_lost without a login)."""
    return Counter(math.floor(pacing.after_lost_connection()) for _ in range(tasks))


def _jittered(period: float, rng: random.Random) -> float:
    return period + rng.uniform(-JITTER, JITTER) * period


def _rows(storm: Storm) -> list[Row]:
    limit = SHARE_LIMIT * IAM_LOGINS_PER_SECOND
    target = f"< {limit:g}/s ({SHARE_LIMIT:.0%} of {IAM_LOGINS_PER_SECOND:g})"
    n = f"{storm.tasks:,} tasks, spread {storm.spread:g} s, reauth {storm.reauth:g} s"

    def verdict(rate: float) -> str:
        return "met" if rate < limit else "missed"

    return [
        Row(SECTION, f"{n}: steady, logins/s", f"{storm.steady:.1f}", target=target, verdict=verdict(storm.steady)),
        Row(
            SECTION,
            f"{n}: every login rejected, logins/s",
            f"{storm.rejected:.1f} (without the guard {storm.rejected_unguarded:,.0f})",
            target=target,
            verdict=verdict(storm.rejected),
        ),
        Row(
            SECTION,
            f"{n}: after a failover, logins/s",
            f"{storm.failover_window:.1f} while they arrive, busiest second {storm.failover_peak:.0f}, first minute"
            f" {storm.failover_minute:.1f} (without the guard {storm.failover_unguarded_peak:,.0f} in one second)",
            target=target + " while they arrive",
            verdict=verdict(storm.failover_window),
        ),
    ]
