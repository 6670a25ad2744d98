"""The fault matrix: one row per injected fault, collected during the run and printed at its end."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.support.agent_process import REPO

MATRIX_FILE = REPO / "test-artifacts" / "fault-matrix.md"


@dataclass(frozen=True, slots=True)
class Row:
    """One fault as it was expected and as it was observed."""

    fault: str
    expected: str
    observed: str
    detection: float | None  # seconds from the fault being in place to /ready (or /status) showing it
    recovery: float | None  # seconds from the fault being cleared to `ready` again
    passed: bool
    note: str = ""
    group: str = ""  # the agent it ran against: rows are shown PostgreSQL, MariaDB, AWS, then the rest


ROWS: list[Row] = []
FIGURES: list[str] = []  # leak and soak figures, one line each, printed and written after the table


def record(row: Row) -> None:
    ROWS.append(row)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


GROUP_ORDER = ("pg", "mariadb", "aws", "iam")


def _order(row: Row) -> int:
    return next((i for i, prefix in enumerate(GROUP_ORDER) if row.group.startswith(prefix)), len(GROUP_ORDER))


def render(rows: list[Row]) -> str:
    """The matrix as a Markdown table, grouped by what failed (PostgreSQL, MariaDB, AWS)."""
    rows = sorted(rows, key=_order)  # stable: within a group, the order the faults ran in
    lines = [
        "| fault | expected | observed | detection | recovery | result |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        result = "ok" if row.passed else "FAILED"
        observed = row.observed + (f" ({row.note})" if row.note else "")
        cells = [row.fault, row.expected, observed, _seconds(row.detection), _seconds(row.recovery), result]
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    return "\n".join(lines)


def write(rows: list[Row], figures: list[str], path: Path = MATRIX_FILE) -> Path:
    """Write the matrix (with a header saying how to read it) and the figures to test-artifacts/fault-matrix.md."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (
        "# Fault matrix\n\n"
        "Written by tests/faults (a real `serve` process per group, real PostgreSQL/MariaDB/moto). Detection: from"
        " the fault being in place to /ready showing the expected status; recovery: from the fault being cleared"
        " to `ready` (for absorbed faults: until the evidence it was handled). A row passes only if /health"
        " answered 200 in every sample of it.\n\n" + render(rows) + "\n"
    )
    if figures:
        text += "\n## Leak and soak figures\n\n" + "\n".join(f"- {line}" for line in figures) + "\n"
    path.write_text(text)
    return path
