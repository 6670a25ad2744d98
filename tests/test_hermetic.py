"""The tests' resolver (tests/support/resolver) and the session check (tests/support/hermetic.py) really refuse.

Each test that provokes a refusal on purpose takes it back with `forget`, so the run stays green; the last test
runs a pytest session of its own to show that a refusal nobody takes back fails the run.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.support.agent_process import REPO, agent_env, run_agent
from tests.support.hermetic import NO_SUCH_DB_HOST, REFUSALS_DIR, forget, refusals


def undeclared() -> str:
    """A fresh name nobody declared (.invalid: even a leak past the resolver could not resolve it)."""
    return f"undeclared-{uuid.uuid4().hex[:8]}.eha-hermetic.invalid"


async def test_a_declared_name_gets_the_system_resolvers_answer_for_an_unknown_name() -> None:
    """EAI_NONAME, "Name or service not known", through loop.getaddrinfo as asyncpg calls it; nothing recorded."""
    before = refusals()
    with pytest.raises(socket.gaierror) as caught:
        await asyncio.get_running_loop().getaddrinfo(NO_SUCH_DB_HOST, 5432)
    assert (caught.value.errno, caught.value.strerror) == (socket.EAI_NONAME, "Name or service not known")
    assert refusals() == before


async def test_loopback_names_resolve_to_loopback() -> None:
    before = refusals()
    infos = await asyncio.get_running_loop().getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)
    assert {info[4][0] for info in infos} == {"127.0.0.1"}
    assert socket.gethostbyaddr("127.0.0.1")[0] == "localhost"  # what http.server's getfqdn asks at bind time
    assert refusals() == before


async def test_an_undeclared_name_is_refused_and_recorded_against_this_test() -> None:
    """asyncio.open_connection (aiomysql's way in) to an undeclared name: refused, recorded with this test's id."""
    name = undeclared()
    with pytest.raises(socket.gaierror) as caught:
        await asyncio.open_connection(name, 3306)
    assert caught.value.errno == socket.EAI_FAIL and "refused" in str(caught.value)
    [entry] = forget(name)
    assert (entry["call"], entry["pid"]) == ("getaddrinfo", os.getpid())
    assert "test_an_undeclared_name_is_refused_and_recorded_against_this_test" in entry["test"]


def test_a_connection_off_the_machine_is_refused_and_recorded() -> None:
    """192.0.2.1 (TEST-NET-1, RFC 5737) is not loopback: no packet leaves, the attempt is recorded."""
    with pytest.raises(OSError, match="off the machine"):
        socket.create_connection(("192.0.2.1", 9), timeout=1)
    [entry] = forget("192.0.2.1 port 9")
    assert entry["call"] == "connect"


async def test_an_agent_process_refuses_an_undeclared_name_and_records_it() -> None:
    """The agent child gets the resolver from PYTHONPATH: its asyncpg lookup is refused and recorded by its pid."""
    name = undeclared()
    env = {"AGENT_DB_DSN": f"postgresql://app@{name}:5432/x", "AGENT_DB_PASSWORD": "whatever-pw"}
    proc = await asyncio.to_thread(run_agent, "check", "--json", env=env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    [entry] = forget(name)
    assert entry["pid"] != os.getpid() and "-m agent check" in entry["process"]
    assert "test_an_agent_process_refuses_an_undeclared_name_and_records_it" in entry["test"]


def test_a_session_with_a_refused_lookup_fails_and_names_it(tmp_path: Path) -> None:
    """The check is a session-finish hook: a passing test that looked up an undeclared name still fails the run."""
    name = undeclared()
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_inner.py").write_text(
        "import socket\n\n\n"
        "def test_looks_up_a_name_and_swallows_the_error():\n"
        f"    try:\n        socket.getaddrinfo({name!r}, 80)\n    except OSError:\n        pass\n"
    )
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.support.hermetic"]
    argv += ["-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path), str(tmp_path / "test_inner.py")]
    with subprocess.Popen(argv, cwd=REPO, env=agent_env({}), stdout=subprocess.PIPE, text=True) as inner:
        output, _ = inner.communicate(timeout=120)
    record = REFUSALS_DIR / f"refused-{inner.pid}.jsonl"
    try:
        assert inner.returncode == pytest.ExitCode.TESTS_FAILED, output
        assert "1 passed" in output and "lookups refused by the tests' resolver" in output
        assert f"getaddrinfo {name!r}" in output and "test_looks_up_a_name_and_swallows_the_error" in output
        assert [json.loads(line)["name"] for line in record.read_text().splitlines()] == [name]
    finally:
        record.unlink(missing_ok=True)
    assert not forget(name), "the inner session's refusal reached this session's record"
