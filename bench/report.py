"""The one results table: rows from every phase, the machine it ran on, and bench/RESULTS.md."""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

MISSING = "—"
BEGIN, END = "<!-- bench:begin (written by `python -m bench`) -->", "<!-- bench:end -->"
COLUMNS = ("Measure", "ecs-health-agent", "postgres_exporter", "mysqld_exporter", "blackbox_exporter", "Target", "")


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table: what was measured and each subject's figure; `verdict` says if a target was met."""

    section: str
    measure: str
    agent: str
    postgres_exporter: str = MISSING
    mysqld_exporter: str = MISSING
    blackbox_exporter: str = MISSING
    target: str = ""
    verdict: str = ""

    def cells(self) -> tuple[str, ...]:
        """The cells in COLUMNS order."""
        subjects = (self.agent, self.postgres_exporter, self.mysqld_exporter, self.blackbox_exporter)
        return (f"**{self.section}** {self.measure}", *subjects, self.target, self.verdict)


@dataclass(frozen=True, slots=True)
class Machine:
    """Where and when the bench ran; load averages at the start and the end of the run."""

    date: str
    cpus: int
    memory_gib: float
    kernel: str
    python: str
    load_start: tuple[float, float, float]
    load_end: tuple[float, float, float]
    mode: str
    minutes: float

    def describe(self) -> str:
        """A short paragraph for the top of the results."""
        start, end = _load(self.load_start), _load(self.load_end)
        return (
            f"{self.date}, {self.mode} run in {self.minutes:.1f} min; {self.cpus} CPUs, {self.memory_gib:.0f} GiB,"
            f" Linux {self.kernel}, Python {self.python}. Load average (1/5/15 min) at start {start}, at end {end}."
        )


def verdict(value: float | None, limit: float, unit: str = "", higher_is_better: bool = False) -> str:
    """`met` or `MISSED by <gap>` for a figure against its target; `n/a` when nothing was measured."""
    if value is None:
        return "n/a"
    value = round(value, 6)  # a figure equal to its limit up to float noise meets it
    ok = value >= limit if higher_is_better else value <= limit
    if ok:
        return "met"
    return f"MISSED by {abs(value - limit):.3g}{unit}"


def machine(load_start: tuple[float, float, float], load_end: tuple[float, float, float], **extra: object) -> Machine:
    """Facts about this machine now."""
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return Machine(
        date=str(extra.get("date", "")),
        cpus=os.cpu_count() or 0,
        memory_gib=pages / 1024**3,
        kernel=platform.release(),
        python=platform.python_version(),
        load_start=load_start,
        load_end=load_end,
        mode=str(extra.get("mode", "full")),
        minutes=float(str(extra.get("minutes", 0.0))),
    )


def render_table(rows: Sequence[Row]) -> str:
    """A Markdown table (readable as plain text too)."""
    lines = [_line(COLUMNS), _line(tuple("---" for _ in COLUMNS))]
    lines += [_line(row.cells()) for row in rows]
    return "\n".join(lines)


def render_results(rows: Sequence[Row], host: Machine, notes: Iterable[str]) -> str:
    """The generated block of RESULTS.md: machine, table, and the notes that say how each figure was taken."""
    parts = [BEGIN, "", f"Measured {host.describe()}", "", render_table(rows), "", "Notes on method:", ""]
    parts += [f"- {note}" for note in notes]
    parts += ["", END]
    return "\n".join(parts)


def write_results(path: Path, block: str) -> None:
    """Replace the generated block of `path` (text outside the markers is kept), or create the file."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.DOTALL)
    if pattern.search(old):
        new = pattern.sub(lambda _: block, old)
    else:
        new = (old.rstrip() + "\n\n" if old.strip() else "# Benchmark results\n\n") + block
    path.write_text(new.rstrip() + "\n", encoding="utf-8")


def _line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in cells) + " |"


def _load(load: tuple[float, float, float]) -> str:
    return "/".join(f"{value:.2f}" for value in load)
