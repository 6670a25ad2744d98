"""The RSS breakdown: bench.rss_steps runs the real serve() with every feature on; its readings become table rows."""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

from bench.common import Service
from bench.report import Row
from bench.subjects import AgentSpec, start_agent

SECTION = "Footprint"
MEASURE = "RSS by step, every feature on, in the real serve()"


@dataclasses.dataclass(frozen=True, slots=True)
class Breakdown:
    """The harness process and the file it writes its readings to."""

    service: Service
    out: Path
    seconds: float


def start_breakdown(spec: AgentSpec, seconds: float, workdir: Path) -> Breakdown:
    """Start `python -m bench.rss_steps` with the spec's environment and configuration."""
    out = workdir / "rss-steps.json"
    out.unlink(missing_ok=True)
    harness = dataclasses.replace(spec, name="rss-steps")
    command = ("-m", "bench.rss_steps", "--out", str(out), "--seconds", f"{seconds:g}")
    return Breakdown(start_agent(harness, workdir, command), out, seconds)


def breakdown_rows(breakdown: Breakdown, timeout: float = 120.0) -> list[Row]:
    """Wait (bounded) for the harness to finish; one row per step: RSS after it, and what it added."""
    proc = breakdown.service.proc
    try:
        proc.wait(timeout=breakdown.seconds + timeout)
    finally:
        breakdown.service.stop()
    if proc.returncode != 0 or not breakdown.out.exists():
        tail = breakdown.service.log_path.read_text(errors="replace")[-300:]
        return [Row(SECTION, MEASURE, f"not measured (exit {proc.returncode}): {tail}")]
    steps = [(str(label), float(mib)) for label, mib in json.loads(breakdown.out.read_text())]
    return step_rows(steps)


def step_rows(steps: list[tuple[str, float]]) -> list[Row]:
    """`label`: `RSS MiB (+delta)` rows, the first one the interpreter alone."""
    (first, base), rows = steps[0], []
    rows.append(Row(SECTION, f"{MEASURE}: {first}", f"{base:.1f} MiB"))
    for (_, before), (label, mib) in itertools.pairwise(steps):
        rows.append(Row(SECTION, f"{MEASURE}: {label}", f"{mib:.1f} MiB ({mib - before:+.1f})"))
    return rows
