"""A round: every probe of a plan once, in dependency order (targets side by side); shared by `check` and `serve`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from itertools import groupby

from agent.probes.base import ProbeResult
from agent.probes.runner import run_probe
from agent.runtime.drain import Drain
from agent.runtime.plan import SHARED_TARGET, Mode, Plan, PlannedProbe, blocker
from agent.shared.reasons import NOT_RUN_CODE


async def run_round(
    plan: Plan, timeout: float, mode: Mode, record: Callable[[ProbeResult], None] | None = None
) -> dict[str, ProbeResult]:
    """Run every probe of the plan once, in dependency order; `record` sees each result as it comes."""
    latest: dict[str, ProbeResult] = {}
    for planned in (p for p in plan.probes if p.probe.target == SHARED_TARGET):
        latest[planned.key] = await _run_one(planned, latest, timeout, mode, record)
    per_target = [p for p in plan.probes if p.probe.target != SHARED_TARGET]
    chains = [list(group) for _, group in groupby(per_target, key=lambda p: p.probe.target)]
    # Targets are independent once credentials are known: diagnose them side by side.
    outcomes = await asyncio.gather(*(_run_chain(c, latest, timeout, mode, record) for c in chains))
    for outcome in outcomes:
        latest.update(outcome)
    return latest


async def _run_chain(
    chain: list[PlannedProbe],
    shared: dict[str, ProbeResult],
    timeout: float,
    mode: Mode,
    record: Callable[[ProbeResult], None] | None,
) -> dict[str, ProbeResult]:
    latest = dict(shared)
    for planned in chain:
        latest[planned.key] = await _run_one(planned, latest, timeout, mode, record)
    return {p.key: latest[p.key] for p in chain}


async def _run_one(
    planned: PlannedProbe,
    latest: Mapping[str, ProbeResult],
    timeout: float,
    mode: Mode,
    record: Callable[[ProbeResult], None] | None,
) -> ProbeResult:
    failed = blocker(planned, latest, mode)
    result = not_run(planned, failed) if failed is not None else await run_probe(planned.probe, timeout)
    if record is not None:
        record(result)
    return result


def not_run(planned: PlannedProbe, failed: ProbeResult) -> ProbeResult:
    """The result of a probe that could not run because one it depends on failed."""
    return ProbeResult(
        probe=planned.probe.name,
        target=planned.probe.target,
        ok=False,
        reason=failed.reason,
        code=NOT_RUN_CODE,
        message=f"not run: the {failed.probe} check ({failed.target}) failed first",
        hint=f"fix the {failed.probe} failure above; this check runs once it passes",
        duration_ms=0.0,
        scope=failed.scope,
    )


async def close_probes(plan: Plan, drain: Drain | None = None) -> None:
    """Release what probes hold (kept database connections), side by side, within the drain's deadline: a close
    that gets no answer in time is aborted (its socket dropped)."""
    closes = [
        asyncio.create_task(close(), name=f"close {planned.key}")
        for planned in plan.probes
        if (close := getattr(planned.probe, "close", None)) is not None
    ]
    await (drain or Drain()).settle(closes, "kept connections")
