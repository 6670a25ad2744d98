"""The change log: one line per change of a probe's outcome or of the overall status, at info or warning.

A scheduler observer (see agent.runtime.scheduler.Observer): it reads the state after each result, so the
runtime never imports an output. Routine runs are debug lines only.
"""

from __future__ import annotations

import logging

from agent.probes.base import ProbeResult
from agent.runtime.readiness import Failing, Status
from agent.runtime.state import AgentState
from agent.shared.reasons import Reason

# A documented logger name (users filter on it), kept from when the state wrote these lines itself.
_changes = logging.getLogger("agent.state")


class ChangeLog:
    """Logs what changed since the last result it saw: a probe failing, failing otherwise, recovering; the status."""

    def __init__(self, state: AgentState) -> None:
        self._state = state
        self._previous: dict[tuple[str, str], ProbeResult] = {}
        self._status = state.status()

    def observe(self, result: ProbeResult) -> None:
        """Scheduler observer: called after the state took `result`; no I/O beyond the log handler."""
        key = (result.probe, result.target)
        previous = self._previous.get(key)
        self._previous[key] = result
        view = self._state.probe_view(result.probe, result.target)  # not the snapshot: this runs on every result
        _log_probe_change(previous, result, view.consecutive_failures)
        self.status_may_have_changed()

    def status_may_have_changed(self) -> None:
        """Log the overall status if it moved (after a result, or when the agent starts draining)."""
        status = self._state.status()
        if status is not self._status:
            _log_status_change(self._status, status, self._state.readiness().failing)
        self._status = status


def _log_probe_change(previous: ProbeResult | None, result: ProbeResult, consecutive_failures: int) -> None:
    """One line per change of a probe's outcome; a run that changes nothing is only a debug line."""
    where = {"probe": result.probe, "target": result.target}
    if result.ok:
        if previous is not None and not previous.ok:
            _changes.info("%s (%s) recovered", result.probe, result.target, extra=where)
        else:
            _changes.debug("%s (%s) passed", result.probe, result.target, extra=where)
        return
    if previous is not None and not previous.ok and (previous.reason, previous.code) == (result.reason, result.code):
        _changes.debug("%s (%s) still failing: %s", result.probe, result.target, result.code, extra=where)
        return
    reason = (result.reason or Reason.UNKNOWN).value
    _changes.warning(
        "%s (%s) failed: %s %s: %s",
        result.probe,
        result.target,
        reason,
        result.code,
        result.message,
        extra={
            **where,
            "reason": reason,
            "scope": result.scope.value if result.scope else None,
            "code": result.code,
            "error": result.message,
            "hint": result.hint,
            "consecutive_failures": consecutive_failures,
        },
    )


def _log_status_change(before: Status, after: Status, failing: tuple[Failing, ...]) -> None:
    """One line when the overall status changes, with what is failing now."""
    if before is after:
        return
    _changes.info(
        "status %s -> %s",
        before.value,
        after.value,
        extra={"status": after.value, "previous_status": before.value, "failing": [f.as_dict() for f in failing]},
    )
