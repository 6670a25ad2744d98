"""The session-finish secret scan (tests/support/leak_scan.py), proven on small inner pytest sessions run in
subprocesses: a leaked secret fails a session that would otherwise pass, whatever subset it ran."""

from __future__ import annotations

import secrets

import pytest

from tests.support.agent_process import REPO

pytest_plugins = ["pytester"]

LEAKY = """
from tests.support.agent_process import OUTPUT_DIR
from tests.support.secrets import remember


def test_an_agent_printed_its_password():
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUTPUT_DIR / "serve-leaky.log").write_text("login failed for app:" + remember("{secret}") + "@db")


def test_something_else():
    pass
"""

FAULT_AGENT_LEAKY = """
from tests.support.secrets import CAPTURED, DISTINCTIVE, remember


def test_a_fault_agent_printed_four_characters_of_a_password():
    password = remember("{secret}")
    DISTINCTIVE[password] = "PostgreSQL password (inner session)"
    CAPTURED.append(("pg-inner", "password starts " + password[:4]))
"""

CLEAN = """
from tests.support.agent_process import OUTPUT_DIR
from tests.support.secrets import remember


def test_an_agent_kept_its_password():
    remember("{secret}")
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUTPUT_DIR / "serve-clean.log").write_text("login failed for app:*****@db")
"""


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester whose sessions import tests.support from this checkout and keep agent output in its tmp dir."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("EHA_AGENT_OUTPUT_DIR", str(pytester.path / "agent-output"))
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p", "tests.support.leak_scan", "-p", "no:cacheprovider", "-p", "no:asyncio", *args, timeout=120
    )


def test_a_leaked_secret_fails_a_passing_session_selected_with_k(inner: pytest.Pytester) -> None:
    """A -k subset whose tests pass fails at the end: the file is named, the secret is not shown."""
    secret = secrets.token_urlsafe(18)
    inner.makepyfile(test_inner=LEAKY.replace("{secret}", secret))
    result = run(inner, "-k", "printed")
    result.assert_outcomes(passed=1, deselected=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*secret scan: secrets leaked (the session fails)*",
            "scanned 1 files under */agent-output and 0 fault-suite agents, for 1 secrets handed to agents",
            "- */agent-output/serve-leaky.log: a secret handed to the agent (its first 8 characters, the whole value)",
        ]
    )
    assert secret[:8] not in result.stdout.str() + result.stderr.str()


def test_four_characters_of_a_distinctive_secret_in_a_fault_agent_fail_the_session(inner: pytest.Pytester) -> None:
    """The fault suite's in-memory outputs are checked for the first four characters of a distinctive value."""
    inner.makepyfile(test_inner=FAULT_AGENT_LEAKY.replace("{secret}", "~QXZW" + secrets.token_hex(12)))
    result = run(inner)
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "scanned 0 files under */agent-output and 1 fault-suite agents, for 1 secrets handed to agents "
            "(distinctive: 1 passwords)",
            "- fault-suite agent pg-inner: PostgreSQL password (inner session) (its first 4 characters)",
        ]
    )
    assert "~" not in "".join(line for line in result.outlines if line.startswith("- fault-suite"))


def test_a_session_whose_agents_kept_their_secrets_passes(inner: pytest.Pytester) -> None:
    """Output scanned, no secret in it: the session passes and says what it scanned."""
    inner.makepyfile(test_inner=CLEAN.replace("{secret}", secrets.token_urlsafe(18)))
    result = run(inner)
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["secret scan: no secret in 1 files under */agent-output and 0 fault-suite agents, for 1 secrets*"]
    )


def test_a_session_without_agent_output_says_nothing_was_scanned(inner: pytest.Pytester) -> None:
    """No agent ran: the scan says so instead of reporting a pass over nothing."""
    inner.makepyfile(test_inner="def test_pure():\n    pass\n")
    result = run(inner)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["secret scan: no agent output in this session, nothing was scanned"])
