"""The edge where a probe runs: timeout, classification, redaction, hint. The only catch-all."""

from __future__ import annotations

import asyncio
import logging

from agent.probes.base import NOTE, Details, Probe, ProbeResult, now
from agent.shared.reasons import Failure, ProbeFailure, Reason, Scope, default_scope, describe
from agent.shared.redact import SECRETS, one_line, redact, truncate

log = logging.getLogger(__name__)


async def run_probe(probe: Probe, timeout: float) -> ProbeResult:
    """Run one probe under its timeout; whatever happens, return a ProbeResult (never raise)."""
    started = now()
    try:
        async with asyncio.timeout(timeout) as deadline:
            details = await probe.run()
    except TimeoutError as exc:
        failure = _timed_out(probe, exc, timeout, deadline.expired())
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - the one catch-all: any failure becomes a classified result
        failure = classify(probe, exc)
    else:
        return _result(probe, started, None, details)
    return _result(probe, started, failure, failure.details)


def classify(probe: Probe, exc: BaseException) -> Failure:
    """A Failure for any exception: the probe's own verdict, its driver table, or `unknown`."""
    if isinstance(exc, ProbeFailure):
        failure = exc.failure
    else:
        try:
            failure = probe.classify(exc) or _unknown(probe, exc)
        except Exception as table_error:  # noqa: BLE001 - a broken table must not take the agent down
            log.error("classifying %s failed: %s", probe.name, describe(table_error))
            failure = _unknown(probe, exc)
    message = truncate(one_line(failure.message))  # cut before any pattern runs; redacted, then on one line
    return Failure(failure.reason, failure.code, message, failure.scope, failure.details)


def _timed_out(probe: Probe, exc: TimeoutError, timeout: float, ours: bool) -> Failure:
    if not ours:  # the driver's own timer fired first: its table may know better
        return classify(probe, exc)
    return Failure(Reason.TIMEOUT, f"{probe.name}:timeout", f"no answer within {timeout:g}s during {probe.step}")


def _unknown(probe: Probe, exc: BaseException) -> Failure:
    return Failure(Reason.UNKNOWN, f"{probe.name}:unexpected", describe(exc))


def _result(probe: Probe, started: float, failure: Failure | None, details: Details) -> ProbeResult:
    duration_ms = (now() - started) * 1000
    safe = {k: redact(str(v)) for k, v in details.items() if k != NOTE}
    if failure is None:
        note = redact(str(details.get(NOTE, "")))
        return ProbeResult(probe.name, probe.target, True, None, "ok", note, "", duration_ms, details=safe)
    try:
        # Hints are the agent's own words around values render() has already redacted: shapes are not searched
        # in them (an example like "using password: NO" would be masked), registered secrets still are.
        hint = SECRETS.scrub(probe.hint(failure))
    except Exception as exc:  # noqa: BLE001 - a hint template bug must not hide the failure itself
        log.error("hint for %s failed: %s", probe.name, describe(exc))
        hint = ""
    return ProbeResult(
        probe.name,
        probe.target,
        False,
        failure.reason,
        failure.code,
        failure.message,
        hint,
        duration_ms,
        details=safe,
        scope=scope_of(probe, failure),
    )


def scope_of(probe: Probe, failure: Failure) -> Scope:
    """A failure's own scope (e.g. a rotation in progress), else its probe's, else the reason's default."""
    return failure.scope or probe.failure_scope or default_scope(failure.reason)
