"""The session's secret scan, a plugin (tests/conftest.py registers it): at the end of every run, whatever subset
it ran (one file, `-k`, `-m`), everything the agents of this session printed or answered is checked for the
secrets the tests handed them, and a leak fails the session (exit status 1).

What is scanned, and how strictly:
- every file under OUTPUT_DIR (serve logs and HTTP bodies, check and healthcheck output, status pages, the
  sandbox's and the fault suite's agents), for the first PREFIX characters of every value given to
  tests.support.secrets.remember();
- every fault-suite agent's output and HTTP bodies kept in memory (CAPTURED), for the first PREFIX_CHECKED
  characters of every distinctive value (tests/faults/hygiene.py).
The report names the file or agent and the kind of secret, never the secret or any part of it.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.agent_process import OUTPUT_DIR, OUTPUT_ROOT, REPO
from tests.support.secrets import CAPTURED, DISTINCTIVE, KNOWN, PREFIX_CHECKED, distinctive_hits

PREFIX = 8  # random secrets' shorter prefixes can occur by chance in kilobytes of base64-ish log text
KINDS = ("password", "secret access key", "session token")  # counted in the report, so coverage is visible


@dataclass
class Scan:
    """What the scan read and what it found (each leak: where, and what kind of secret)."""

    files: int = 0
    captured: int = 0
    leaks: list[str] = field(default_factory=list)


SCAN = pytest.StashKey[Scan]()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Start with an empty output directory; drop those of earlier sessions that have ended."""
    shutil.rmtree(OUTPUT_DIR, ignore_errors=True)
    if OUTPUT_DIR.parent != OUTPUT_ROOT or not OUTPUT_ROOT.is_dir():
        return
    for entry in OUTPUT_ROOT.iterdir():
        if not _running_session(entry):
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Scan this session's agent output; a leak turns a passing session into a failed one."""
    scan = scan_outputs()
    session.config.stash[SCAN] = scan
    if scan.leaks and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Say what was scanned (or that nothing was) and, on a leak, where and which kind of secret."""
    scan = config.stash.get(SCAN, None)
    if scan is None:
        return
    if not scan.files and not scan.captured:
        terminalreporter.write_line("secret scan: no agent output in this session, nothing was scanned")
        return
    kinds = Counter(kind for value in KNOWN for kind in KINDS if kind in DISTINCTIVE.get(value, ""))
    covered = ", ".join(f"{kinds[k]} {k}s" for k in KINDS if kinds[k])
    what = (
        f"{scan.files} files under {_shown(OUTPUT_DIR)} and {scan.captured} fault-suite agents, "
        f"for {len(KNOWN)} secrets handed to agents" + (f" (distinctive: {covered})" if covered else "")
    )
    if not scan.leaks:
        terminalreporter.write_line(f"secret scan: no secret in {what}")
        return
    terminalreporter.section("secret scan: secrets leaked (the session fails)", sep="!", red=True, bold=True)
    terminalreporter.write_line(f"scanned {what}")
    for leak in scan.leaks:
        terminalreporter.write_line(f"- {leak}", red=True)


def scan_outputs() -> Scan:
    """Check every agent output of this session against every secret handed to an agent (see the module doc)."""
    scan = Scan()
    paths = sorted(p for p in OUTPUT_DIR.rglob("*") if p.is_file()) if OUTPUT_DIR.is_dir() else []
    for path in paths:
        scan.files += 1
        text = path.read_text(errors="replace")
        for secret in KNOWN:
            if len(secret) >= PREFIX and secret[:PREFIX] in text:
                whole = ", the whole value" if secret in text else ""
                kind = DISTINCTIVE.get(secret, "a secret handed to the agent")
                scan.leaks.append(f"{_shown(path)}: {kind} (its first {PREFIX} characters{whole})")
    for name, text in CAPTURED:
        scan.captured += 1
        for value, kind in distinctive_hits(text):
            whole = ", the whole value" if value in text else ""
            scan.leaks.append(f"fault-suite agent {name}: {kind} (its first {PREFIX_CHECKED} characters{whole})")
    return scan


def _running_session(entry: Path) -> bool:
    """Whether entry is the output directory of a pytest session that is still running (by its pid)."""
    pid = entry.name.removeprefix("session-")
    if not entry.is_dir() or not entry.name.startswith("session-") or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
