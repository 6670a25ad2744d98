"""The table of docs/hostile-peers.md: written from a full run of the suite, read back to check every run.

Only the rows' reasons and codes are checked (they are what the agent promises); the figures beside them are what
the run that wrote the table measured, and each run writes its own to test-artifacts/hostile-peers.md.
"""

from __future__ import annotations

from tests.faults.hostile.rows import MIB, Row
from tests.support.agent_process import REPO

DOC = REPO / "docs" / "hostile-peers.md"
ARTIFACT = REPO / "test-artifacts" / "hostile-peers.md"
WRITE_VARIABLE = "EHA_WRITE_HOSTILE_TABLE"
BEGIN = "<!-- rows: written by tests/faults/test_hostile_peers.py with EHA_WRITE_HOSTILE_TABLE=1, checked every run -->"
END = "<!-- end of rows -->"
HEADER = (
    "| peer | hostility | reason | code | the probe failed after | RSS peak (above baseline) | RSS after |"
    " /health p99 | the peer got onto one connection |\n|---|---|---|---|---|---|---|---|---|"
)


def render(rows: list[Row]) -> str:
    """The rows as a Markdown table."""
    lines = [HEADER]
    for row in rows:
        failed = "-" if row.fail_ms is None else f"{row.fail_ms:,.0f} ms"
        cells = [
            row.peer.value,
            row.hostility.value,
            f"`{row.reason}`",
            f"`{row.code}`",
            failed,
            f"{max(0, row.peak_kib - row.base_kib) / MIB:+.1f} MiB",
            f"{(row.after_kib - row.base_kib) / MIB:+.1f} MiB",
            f"{row.health_p99_ms:.1f} ms",
            _size(row.offered),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _size(count: int) -> str:
    return f"{count / (1 << 20):.1f} MiB" if count >= 1 << 20 else f"{count / 1024:.1f} KiB"


def write(rows: list[Row]) -> None:
    """Replace the table between BEGIN and END in docs/hostile-peers.md."""
    text = DOC.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    DOC.write_text(f"{head}{BEGIN}\n{render(rows)}\n{END}{tail}")


def write_artifact(rows: list[Row]) -> None:
    """This run's own table, for people (test-artifacts/ is not kept in git)."""
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text("# Hostile peers: this run\n\n" + render(rows) + "\n")


def documented() -> dict[tuple[str, str], tuple[str, str]]:
    """(peer, hostility) -> (reason, code), as docs/hostile-peers.md states them."""
    text = DOC.read_text()
    body = text.partition(BEGIN)[2].partition(END)[0]
    rows = {}
    for line in body.strip().splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        rows[(cells[0], cells[1])] = (cells[2].strip("`"), cells[3].strip("`"))
    return rows
