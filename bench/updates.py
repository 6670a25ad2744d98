"""What one probe result costs inside the agent at 10, 300 and 3,000 targets: the state taking it, the change log
observing it and /ready's verdict, timed in-process (no world needed). The per-result work must not grow with
the number of targets (issue #12: at 3,000 targets the old full recount made /health stop answering)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from agent.config.models import AgentConfig
from agent.outputs.events import ChangeLog
from agent.probes.base import ProbeResult
from agent.runtime.state import AgentState
from agent.shared.reasons import Reason
from bench.report import Row
from bench.settings import Settings
from bench.world import World

SECTION = "Scale"
TARGETS = (10, 300, 3_000)


def update_rows(_world: World, settings: Settings, _workdir: Path) -> tuple[list[Row], list[str]]:
    """Microseconds per result at each target count, and what a /status snapshot costs after it."""
    results = 2_000 if settings.quick else 20_000
    logging.getLogger("agent.state").setLevel(logging.ERROR)  # the change lines would time the log handler
    cells = "; ".join(_cell(targets, results) for targets in TARGETS)
    rows = [Row(SECTION, "one probe result (state, change log, /ready verdict); then a /status snapshot", cells)]
    note = (
        f"Per-result cost: an in-process AgentState with N db probes, all passed once; {results:,} results cycling"
        " over the first 10 targets (fail, fail, fail, pass), each observed by the change log and followed by"
        " /ready's verdict; then one snapshot as /status and /metrics build it. Median of 5."
    )
    return rows, [note]


def _cell(targets: int, results: int) -> str:
    per_result, snapshot = zip(*(_measure(targets, results) for _ in range(5)), strict=True)
    return f"{targets:,}: {_median(per_result):.1f} µs, snapshot {_median(snapshot):.2f} ms"


def _measure(targets: int, results: int) -> tuple[float, float]:
    """(µs per result, ms for the snapshot after them)."""
    pairs = [("db", f"t{i}") for i in range(targets)]
    state = AgentState(AgentConfig(targets=()), pairs)
    changes = ChangeLog(state)
    for probe, target in pairs:
        state.record(_result(probe, target, ok=True))
    state.snapshot()
    runs = [_result("db", f"t{i % 10}", ok=i % 4 == 3) for i in range(results)]
    started = time.perf_counter()
    for result in runs:
        state.record(result)
        changes.observe(result)
        state.readiness()
    per_result = (time.perf_counter() - started) / results * 1e6
    started = time.perf_counter()
    state.snapshot()
    return per_result, (time.perf_counter() - started) * 1e3


def _result(probe: str, target: str, ok: bool) -> ProbeResult:
    if ok:
        return ProbeResult(probe, target, True, None, "ok", "", "", 3.0)
    return ProbeResult(probe, target, False, Reason.NETWORK, "db:timeout", "no answer", "", 3.0)


def _median(values: tuple[float, ...]) -> float:
    return sorted(values)[len(values) // 2]
