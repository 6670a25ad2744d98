"""Fleet-scale cost: per-task call rates measured at shortened cadences, scaled back, then multiplied out.

The agent's cadences (secret refresh 900 s, fresh login and STS check 300 s, probe interval 10 s) are too long
to observe in a bench of minutes, so the measured agent runs with every cadence divided by the same factor
(`scale`); the spacing of its counted calls is then multiplied by that factor again. Token regeneration (600 s)
is a constant, not a setting, but it signs locally: it makes no AWS call and opens no connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SECONDS_PER_DAY = 86_400
SECRETS_MANAGER_DOLLARS_PER_10K_CALLS = 0.05  # public price of API calls (the per-secret monthly fee aside)
RDS_IAM_LOGINS_PER_SECOND = 200.0  # per instance, current RDS docs (FIELD-NOTES); older docs: 20/s for MySQL
DEFAULTS = {"interval": 10.0, "secret_refresh": 900.0, "db_reauth": 300.0}


@dataclass(frozen=True, slots=True)
class PerTask:
    """One task's rates at the real (unscaled) cadences."""

    secret_calls_per_day: float
    sts_calls_per_day: float
    logins_per_day: float  # fresh logins of a healthy target (the kept connection is re-proven)
    failing_logins_per_second: float  # login attempts while the database rejects the login


@dataclass(frozen=True, slots=True)
class Fleet:
    """What `tasks` tasks, all probing one database, cost per day and ask of that database."""

    tasks: int
    secret_calls_per_day: float
    secret_dollars_per_day: float
    sts_calls_per_day: float
    iam_logins_per_second: float
    iam_limit_share: float  # of RDS_IAM_LOGINS_PER_SECOND
    failing_iam_logins_per_second: float
    failing_iam_limit_share: float


def mean_spacing(times: Sequence[float], counts: Sequence[int]) -> float | None:
    """Mean seconds between counted events, from the times a counter was seen to rise and by how much.

    The first rise only marks a start (the time before it is unknown); None with fewer than two rises.
    """
    if len(times) < 2 or len(times) != len(counts):
        return None
    events_after_first = sum(counts[1:])
    return (times[-1] - times[0]) / events_after_first if events_after_first else None


def per_day(spacing_seconds: float | None, scale: float) -> float | None:
    """Events per day at the real cadence, from their spacing measured at cadences divided by `scale`."""
    if spacing_seconds is None or spacing_seconds <= 0:
        return None
    return SECONDS_PER_DAY / (spacing_seconds * scale)


def fleet(per_task: PerTask, tasks: int) -> Fleet:
    """Multiply one task's rates out to a fleet probing one database."""
    secret_calls = per_task.secret_calls_per_day * tasks
    logins = per_task.logins_per_day * tasks / SECONDS_PER_DAY
    failing = per_task.failing_logins_per_second * tasks
    return Fleet(
        tasks=tasks,
        secret_calls_per_day=secret_calls,
        secret_dollars_per_day=secret_calls / 10_000 * SECRETS_MANAGER_DOLLARS_PER_10K_CALLS,
        sts_calls_per_day=per_task.sts_calls_per_day * tasks,
        iam_logins_per_second=logins,
        iam_limit_share=logins / RDS_IAM_LOGINS_PER_SECOND,
        failing_iam_logins_per_second=failing,
        failing_iam_limit_share=failing / RDS_IAM_LOGINS_PER_SECOND,
    )


def expected_per_task(interval: float, secret_refresh: float, db_reauth: float) -> PerTask:
    """The rates the cadences promise (each refresh happens at the first probe run after it is due)."""
    # A refresh waits for the next run: on average half an interval late.
    return PerTask(
        secret_calls_per_day=SECONDS_PER_DAY / (secret_refresh + interval / 2),
        sts_calls_per_day=SECONDS_PER_DAY / (db_reauth + interval / 2),
        logins_per_day=SECONDS_PER_DAY / (db_reauth + interval / 2),
        failing_logins_per_second=1 / interval,
    )


def shortest_cadences_meeting(tasks: int, share: float, dollars: float) -> dict[str, float]:
    """The shortest db_reauth and secret_refresh (seconds) that keep `tasks` under both targets."""
    reauth = tasks / (share * RDS_IAM_LOGINS_PER_SECOND)
    refresh = SECONDS_PER_DAY * tasks * SECRETS_MANAGER_DOLLARS_PER_10K_CALLS / (dollars * 10_000)
    return {"db_reauth": reauth, "secret_refresh": refresh}
