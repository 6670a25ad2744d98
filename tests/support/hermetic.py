"""A hermetic run (issue 11, item 8): no lookup reaches the machine's resolver, no connection leaves the machine.

A pytest plugin (tests/conftest.py loads it). At configure time it installs the tests' resolver
(tests/support/resolver/sitecustomize.py) in the pytest process and puts its directory on PYTHONPATH, with the
refusals file, in os.environ, which every process the tests start inherits (tests.support.agent_process.agent_env,
tests.faults.harness.fault_env, the sandbox's and the bench's environments all start from os.environ). When the
session finishes, any refusal recorded by any of those processes fails the run, listing the names and the test
and process that asked. A refusal a test provokes on purpose is taken back with `forget`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.support.agent_process import REPO
from tests.support.resolver import sitecustomize as resolver
from tests.support.resolver.sitecustomize import DOES_NOT_RESOLVE, FAULTS_PG_HOST, NO_SUCH_DB_HOST

__all__ = ["DOES_NOT_RESOLVE", "FAULTS_PG_HOST", "NO_SUCH_DB_HOST", "REFUSALS_DIR", "forget", "refusals"]

RESOLVER_DIR = Path(resolver.__file__).resolve().parent
REFUSALS_DIR = REPO / "test-artifacts" / "resolver"
_state: dict[str, Any] = {}


def refusals_file() -> Path:
    """This session's refusals file (one per pytest process: concurrent sessions do not mix)."""
    return REFUSALS_DIR / f"refused-{os.getpid()}.jsonl"


def refusals(path: Path | None = None) -> list[dict[str, Any]]:
    """Every refusal recorded so far in this session (or in `path`): call, name, pid, process, test."""
    path = path or refusals_file()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


def forget(name: str) -> list[dict[str, Any]]:
    """Take back the refusals of `name` (a test that provoked them on purpose); return them."""
    entries = refusals()
    taken = [e for e in entries if e["name"] == name]
    kept = [json.dumps(e) + "\n" for e in entries if e["name"] != name]
    refusals_file().write_text("".join(kept), encoding="utf-8")
    return taken


def pytest_configure(config: pytest.Config) -> None:
    """Install the resolver here and, through the environment, in every process the tests start."""
    _refuse_aiodns()
    path = refusals_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("", encoding="utf-8")
    _state["environ"] = {k: os.environ.get(k) for k in ("PYTHONPATH", resolver.LOG_VARIABLE)}
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(RESOLVER_DIR), os.environ.get("PYTHONPATH")]))
    os.environ[resolver.LOG_VARIABLE] = str(path)
    resolver.install(str(path))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Fail the run when any lookup was refused (by this process or by one it started)."""
    found = refusals()
    _state["found"] = found
    if found and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say which names were refused, to which process and in which test."""
    found: list[dict[str, Any]] = _state.get("found", [])
    if not found:
        return
    terminalreporter.section("lookups refused by the tests' resolver: the run fails", sep="=", red=True)
    for entry in found:
        terminalreporter.write_line(
            f"{entry['call']} {entry['name']!r} by pid {entry['pid']} ({entry['process']}) "
            f"during {entry['test'] or 'no test'}"
        )
    terminalreporter.write_line(
        "Use a loopback address, or a name declared in tests/support/resolver/sitecustomize.py (DOES_NOT_RESOLVE). "
        f"Record: {refusals_file()}"
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    """Give the environment back (an in-process pytest run inside a test leaves nothing behind)."""
    for key, value in _state.pop("environ", {}).items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    path = refusals_file()
    if path.exists() and not path.read_text(encoding="utf-8").strip():
        path.unlink()  # an empty record is no evidence of anything; a non-empty one stays for reading


def _refuse_aiodns() -> None:
    import aiohttp.resolver

    if aiohttp.resolver.DefaultResolver is not aiohttp.resolver.ThreadedResolver:
        raise pytest.UsageError(
            "aiodns is installed: aiohttp would resolve through c-ares, past the tests' resolver "
            "(tests/support/resolver). Uninstall aiodns."
        )
