"""Soak (issue #16): does RSS keep growing? Two agents probe at a 1 s interval for ten minutes, read every 30 s.

`python -m bench --only soak` runs it alone (about 11 minutes; `--quick`: 20 s, proves only that it runs).
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from bench.common import MIB, memory_bytes
from bench.footprint import (
    EVERY_FEATURE,
    PG_AGENT,
    PROBE_INTERVAL,
    Subject,
    every_feature_spec,
    pg_password_spec,
    scraping,
    wait_up,
)
from bench.report import Row, verdict
from bench.settings import Settings
from bench.subjects import start_agent
from bench.world import World

SECTION = "Footprint"
GROWTH_LIMIT_MIB = 1.0
READ_EVERY = 30.0
SCRAPE_EVERY = 10.0  # a Prometheus server and an ALB


def soak_rows(world: World, settings: Settings, workdir: Path) -> tuple[list[Row], list[str]]:
    """RSS growth of each agent from the end of the warm-up to the end of the soak."""
    specs = (pg_password_spec(world, PROBE_INTERVAL), every_feature_spec(world, PROBE_INTERVAL))
    with ExitStack() as stack:
        subjects = []
        for spec in specs:
            agent = start_agent(spec, workdir)
            stack.callback(agent.stop)
            subjects.append(Subject(agent, ("/ready", "/metrics")))
        for subject in subjects:
            wait_up(subject)
        readings = _read(subjects, settings)
    first = {name: series[0] for name, series in readings.items()}
    growth = {name: series[-1] - series[0] for name, series in readings.items()}
    cell = "; ".join(
        f"{_LABELS[name]} {growth[name]:+.1f} MiB ({first[name]:.1f} -> {readings[name][-1]:.1f}, max"
        f" {max(readings[name]):.1f})"
        for name in readings
    )
    minutes = settings.soak_seconds / 60
    row = Row(
        SECTION,
        f"RSS growth over {minutes:g} min at a {PROBE_INTERVAL:g} s interval (after {settings.soak_warmup:g} s)",
        cell,
        target=f"≤ +{GROWTH_LIMIT_MIB:g} MiB",
        verdict=verdict(max(growth.values()), GROWTH_LIMIT_MIB, " MiB"),
    )
    series = "; ".join(f"{_LABELS[n]}: {' '.join(f'{v:.1f}' for v in s)}" for n, s in readings.items())
    note = (
        f"Soak: the PostgreSQL-with-a-password and every-feature agents probed every {PROBE_INTERVAL:g} s, /ready and"
        f" /metrics requested every {SCRAPE_EVERY:g} s; VmRSS read every {READ_EVERY:g} s from the end of a"
        f" {settings.soak_warmup:g} s warm-up, MiB: {series}."
    )
    return [row], [note]


def _read(subjects: list[Subject], settings: Settings) -> dict[str, list[float]]:
    """VmRSS of each subject after the warm-up, then every READ_EVERY seconds to the end of the soak."""
    readings: dict[str, list[float]] = {s.service.name: [] for s in subjects}
    every = min(READ_EVERY, settings.soak_seconds)
    with scraping(subjects, SCRAPE_EVERY) as stop:
        stop.wait(settings.soak_warmup)
        _take(subjects, readings)
        waited = 0.0
        while waited < settings.soak_seconds:
            stop.wait(every)  # set only when the block ends
            waited += every
            _take(subjects, readings)
    return readings


def _take(subjects: list[Subject], readings: dict[str, list[float]]) -> None:
    for subject in subjects:
        readings[subject.service.name].append(memory_bytes(subject.service.pid) / MIB)


_LABELS = {PG_AGENT: "PostgreSQL", EVERY_FEATURE: "every feature"}
