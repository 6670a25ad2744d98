"""The fast cadence every fault-suite agent runs at, and the detection and recovery bounds it implies."""

from __future__ import annotations

from tests.faults.scenario import Bounds

INTERVAL = 0.2
TIMEOUT = 1.0
FAILURE_THRESHOLD = 2
SUCCESS_THRESHOLD = 2
REAUTH = 1.0  # a fresh login (the static password, the secret, the token) is proven every second
# A loaded 2-core machine with other suites running: scheduling, process start-up of helpers, GC.
SLACK = 2.0

FAST = {
    "AGENT_INTERVAL_SECONDS": str(INTERVAL),
    "AGENT_TIMEOUT_SECONDS": str(TIMEOUT),
    "AGENT_FAILURE_THRESHOLD": str(FAILURE_THRESHOLD),
    "AGENT_SUCCESS_THRESHOLD": str(SUCCESS_THRESHOLD),
    "AGENT_DB_REAUTH_SECONDS": str(REAUTH),
    "AGENT_SHUTDOWN_GRACE_SECONDS": "0.2",
    # Log in again at once after a lost kept connection: the rows that show a killed session absorbed in the same
    # run. The rows about the re-login spread set their own.
    "AGENT_DB_RELOGIN_SPREAD_SECONDS": "0",
}


def bounds(
    *,
    masked: float = 0.0,
    run: float = 0.1,
    failures: int = FAILURE_THRESHOLD,
    successes: int = SUCCESS_THRESHOLD,
) -> Bounds:
    """Detection: whatever hides the fault at first (`masked`, e.g. the kept connection until its reauth), then
    `failures` runs of up to `run` seconds each at the interval (+10 % jitter). Recovery: one run still in
    flight (up to the timeout), then `successes` passing runs. Both plus SLACK."""
    per_run = INTERVAL * 1.1 + run
    detect = masked + failures * per_run + SLACK
    recover = TIMEOUT + (successes + 1) * INTERVAL * 1.1 + SLACK
    return Bounds(detect=detect, recover=recover)
