"""`python -m bench [--quick] [--only PHASE,...]`: every phase on this machine, one table, bench/RESULTS.md."""

from __future__ import annotations

import argparse
import datetime
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from bench.common import REPO, load_average
from bench.detection import detection_rows
from bench.fleet import cost_rows
from bench.footprint import footprint_rows
from bench.latency import latency_rows
from bench.report import Row, machine, render_results, render_table, write_results
from bench.scale import scale_rows
from bench.settings import Settings
from bench.soak import soak_rows
from bench.startup import cold_start_rows
from bench.storm import storm_rows
from bench.updates import update_rows
from bench.world import World

Phase = Callable[[World, Settings, Path], tuple[list[Row], list[str]]]
# Quietest first: footprint and cold start are the figures most disturbed by the bench's own load.
PHASES: dict[str, Phase] = {
    "footprint": footprint_rows,
    "startup": cold_start_rows,
    "latency": latency_rows,
    "detection": detection_rows,
    "cost": cost_rows,
    "scale": scale_rows,
    "updates": update_rows,
    "storms": storm_rows,
    "soak": soak_rows,  # last and longest: ten minutes of two agents probing every second
}
RESULTS = REPO / "bench" / "RESULTS.md"
SECTIONS = (
    "Footprint",
    "Cold start",
    "Latency",
    "Detection",
    "Fleet cost",
    "Login storms",
    "Scale",
)  # the table's order


def main(argv: list[str] | None = None) -> int:
    """Run the selected phases, print the table, write RESULTS.md (full runs, or --output)."""
    args = _parser().parse_args(argv)
    settings = Settings.smoke() if args.quick else Settings.full()
    phases = _selected(args.only)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # so the cleanup below runs when the bench is stopped
    load_start, started = load_average(), time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="eha-bench-"))
    rows: list[Row] = []
    notes: list[str] = []
    world = World()
    try:
        world.start()
        if not world.mysql_available:
            notes.append("MariaDB did not answer on 127.0.0.1:3306: the MariaDB figures are missing.")
        loads = []
        for name in phases:
            loads.append(f"{name} {load_average()[0]:.2f}")
            _progress(f"{name} (load {load_average()[0]:.2f})")
            phase_rows, phase_notes = PHASES[name](world, settings, workdir)
            rows += phase_rows
            notes += phase_notes
        notes.append(f"1-minute load average as each phase began: {', '.join(loads)}.")
    finally:
        world.close()
        if args.keep:
            _progress(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    rows.sort(key=lambda row: SECTIONS.index(row.section) if row.section in SECTIONS else len(SECTIONS))
    host = machine(
        load_start,
        load_average(),
        date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        mode="quick" if args.quick else "full",
        minutes=(time.monotonic() - started) / 60,
    )
    print(f"\n{host.describe()}\n\n{render_table(rows)}\n")
    output = args.output or (None if args.quick or args.only else RESULTS)
    if output is not None:
        write_results(output, render_results(rows, host, notes))
        _progress(f"written to {output}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short windows: a smoke run of every phase")
    parser.add_argument("--only", default="", help=f"comma-separated phases of: {', '.join(PHASES)}")
    parser.add_argument("--output", type=Path, help="write the results here (default: bench/RESULTS.md, full runs)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory with every process's log")
    return parser


def _selected(only: str) -> list[str]:
    names = [n.strip() for n in only.split(",") if n.strip()] or list(PHASES)
    unknown = [n for n in names if n not in PHASES]
    if unknown:
        raise SystemExit(f"unknown phase(s) {unknown}: choose from {', '.join(PHASES)}")
    return names


def _progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main())
