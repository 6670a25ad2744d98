"""`ecs-health-agent sandbox` driven the way a person drives it (a process, its control API, SIGTERM), and the
check that decides whether an existing PostgreSQL is fit for it (it must really check passwords)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import botocore.session
import pytest

from agent.sandbox.database import enforcement_problem, new_password, open_database
from agent.sandbox.postgres import PostgresSandbox
from tests.support.agent_process import OUTPUT_DIR, REPO, AgentHttp, agent_env, run_agent
from tests.support.databases import Server
from tests.support.ports import free_port
from tests.support.secrets import remember

UNINSTALLED = Path(__file__).resolve().parent / "support" / "uninstalled"  # a sitecustomize hiding modules
START_TIMEOUT = 120.0  # moto, a throwaway cluster and the agent, on a loaded 2-core machine
FAST = {"AGENT_INTERVAL_SECONDS": "0.3", "AGENT_DB_REAUTH_SECONDS": "1", "AGENT_FAILURE_THRESHOLD": "2"}


def post(url: str) -> dict[str, Any]:
    request = urllib.request.Request(url, method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=30) as reply:
        return dict(json.loads(reply.read()))


def wait_json(url: str, timeout: float, proc: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    """GET url until it answers JSON; fail early (with the sandbox's output) if the sandbox exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"sandbox exited with {proc.returncode}:\n{log.read_text()}"
        with contextlib.suppress(OSError, ValueError), urllib.request.urlopen(url, timeout=5) as reply:
            return dict(json.loads(reply.read()))
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout}s:\n{log.read_text()}")


def secret_password(info: dict[str, Any]) -> str:
    """Read the secret the way the agent does (task-role credentials from the endpoint) and remember it."""
    aws = info["aws"]
    with urllib.request.urlopen(aws["credentials_url"], timeout=10) as reply:
        keys = json.loads(reply.read())
    client = botocore.session.get_session().create_client(
        "secretsmanager",
        region_name=aws["region"],
        endpoint_url=aws["endpoint_url"],
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys["Token"],
    )
    value = json.loads(client.get_secret_value(SecretId=aws["secret_arn"])["SecretString"])
    return remember(value["password"])


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def descendants(pid: int) -> set[int]:
    """Every process below pid (children of children too), from /proc."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                found |= {int(child)} | descendants(int(child))
    return found


@contextlib.contextmanager
def sandbox(agent_port: int, control_port: int, tmp: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """`python -m agent sandbox`, killed if left over; its output is copied where the secret scan looks."""
    log = tmp / "sandbox.out"  # not in OUTPUT_DIR itself: a concurrent pytest run may empty that at any time
    argv = [sys.executable, "-m", "agent", "sandbox", "--port", str(agent_port), "--control-port", str(control_port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=agent_env(FAST), stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        yield proc, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
        (OUTPUT_DIR / f"sandbox-{time.time_ns()}.out").write_bytes(log.read_bytes())


def test_break_the_password_rotate_the_secret_and_stop_cleanly(tmp_path: Path) -> None:
    """auth with its hint after the password changes, ready after a rotation, 503 for a broken backend and
    ready after /fix, nothing left after SIGTERM."""
    agent_port, control_port = free_port(), free_port()
    control = f"http://127.0.0.1:{control_port}"
    with sandbox(agent_port, control_port, tmp_path) as (proc, log):
        info = wait_json(f"{control}/", START_TIMEOUT, proc, log)
        agent = AgentHttp(agent_port)
        agent.wait_for(lambda body: body["status"] == "ready", timeout=START_TIMEOUT)
        before = secret_password(info)
        assert post(f"{control}/break/password")["broken"] == ["password"]
        agent.wait_for(lambda body: body["status"] == "not_ready", timeout=30)
        db = agent.probe("db")
        assert (db["reason"], db["code"]) == ("auth", "pg:28P01")
        assert info["postgres"]["role"] in db["hint"] and "password" in db["hint"]
        assert agent.get("/ready").status == 503
        post(f"{control}/rotate-secret")
        agent.wait_for(lambda body: body["status"] == "ready", timeout=30)
        after = secret_password(info)
        assert after != before
        assert post(f"{control}/break/backend?mode=500")["broken"] == ["backend"]
        body = agent.wait_for(lambda body: body["status"] == "not_ready", timeout=30)
        assert body["failing"] == [{"probe": "app", "target": "backend", "reason": "server", "scope": "task"}]
        assert agent.probe("app", "backend")["code"] == "app:http_500"
        post(f"{control}/fix")
        agent.wait_for(lambda body: body["status"] == "ready", timeout=30)
        running = wait_json(f"{control}/", 10, proc, log)
        pids = descendants(proc.pid) | _postmaster(running)
        assert running["agent"]["pid"] in pids
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()
    output = log.read_text()
    assert "PostgreSQL: using the server" in output or "PostgreSQL: not using" in output, "say which and why"
    assert "stopped; everything it started is gone" in output
    assert before not in output and after not in output
    _assert_nothing_left(running, pids, agent_port, control_port)


def test_ctrl_c_while_starting_leaves_nothing_behind(tmp_path: Path) -> None:
    """SIGINT while PostgreSQL is being set up: the cluster (or role) being made is still removed, exit 0."""
    agent_port, control_port = free_port(), free_port()
    with sandbox(agent_port, control_port, tmp_path) as (proc, log):
        deadline = time.monotonic() + START_TIMEOUT
        while "PostgreSQL: " not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.02)
        children = descendants(proc.pid)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, log.read_text()
    output = log.read_text()
    assert "stopped; everything it started is gone" in output, output
    assert not [pid for pid in children if alive(pid)]
    for data_dir in re.findall(r"throwaway cluster from \S+ in (\S+)", output):
        assert not Path(data_dir).exists(), f"{data_dir} left behind"
    assert not listening(agent_port) and not listening(control_port)


def _postmaster(info: dict[str, Any]) -> set[int]:
    if info["postgres"]["data_dir"] is None:
        return set()
    return {int((Path(info["postgres"]["data_dir"]) / "data" / "postmaster.pid").read_text().split()[0])}


def _assert_nothing_left(info: dict[str, Any], pids: set[int], agent_port: int, control_port: int) -> None:
    left = [pid for pid in pids if alive(pid)]
    assert not left, f"still running: {left}"
    ports = [agent_port, control_port, info["postgres"]["port"]]
    aws = info["aws"]
    ports += [int(url.split(":")[2].split("/")[0]) for url in (aws["endpoint_url"], aws["credentials_url"])]
    assert not [port for port in ports if listening(port)], "a port the sandbox opened is still listening"
    if info["postgres"]["data_dir"] is not None:
        assert not Path(info["postgres"]["data_dir"]).exists()


@pytest.mark.parametrize("missing", ["moto", "agent.sandbox"])
def test_without_the_extra_the_command_names_what_is_missing_and_the_fix_and_exits_2(missing: str) -> None:
    """As in the container image (no moto, no agent.sandbox): one line on stderr, exit 2, no traceback."""
    path = os.pathsep.join(filter(None, [str(UNINSTALLED), os.environ.get("PYTHONPATH")]))
    done = run_agent("sandbox", "--port", str(free_port()), env={"PYTHONPATH": path, "EHA_TEST_UNINSTALLED": missing})
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"ecs-health-agent sandbox: {missing} is not installed"), line
    assert line.endswith(": pip install 'ecs-health-agent[sandbox]' (from a checkout: pip install -e '.[sandbox]')")


async def test_a_server_that_trusts_loopback_is_not_used_and_a_throwaway_cluster_is() -> None:
    """A trust-auth server would accept a broken password: detected, said, and replaced by a throwaway cluster."""
    cluster = PostgresSandbox()
    try:
        await asyncio.to_thread(cluster.start)
        admin = cluster.admin_dsn()
        assert await enforcement_problem(admin) is None  # scram-sha-256 for every role but the admin
        await asyncio.to_thread((cluster.data / "pg_hba.conf").write_text, "host all all 127.0.0.1/32 trust\n")
        await asyncio.to_thread(cluster.restart)
        problem = await enforcement_problem(admin)
        assert problem is not None and "WRONG password" in problem and "trust" in problem
        said: list[str] = []
        db = await open_database(admin, said.append)
        try:
            assert db.kind == "throwaway" and db.port != cluster.port
            assert any("trust authentication" in line for line in said)
        finally:
            await db.drop()
        assert db.cluster is not None and not await asyncio.to_thread(db.cluster.root.exists)
    finally:
        await asyncio.to_thread(cluster.cleanup)


async def test_an_unreachable_server_is_reported_without_its_password() -> None:
    problem = await enforcement_problem(f"postgresql://postgres:hunter2-not-used@127.0.0.1:{free_port()}/postgres")
    assert problem is not None and "cannot log in there" in problem and "hunter2" not in problem


async def test_an_existing_server_that_checks_passwords_is_used_and_left_as_it_was(pg_server: Server) -> None:
    """Its own role and database are made there (the password really works) and dropped again."""
    secret = f":{pg_server.admin_password}" if pg_server.admin_password else ""
    admin = f"postgresql://{pg_server.admin_user}{secret}@{pg_server.host}:{pg_server.port}/postgres"
    said: list[str] = []
    db = await open_database(admin, said.append)
    assert db.kind == "existing" and db.cluster is None and "using the server" in said[0]
    password = remember(new_password())
    try:
        await db.create(password)
        conn = await asyncpg.connect(host=db.host, port=db.port, user=db.role, password=password, database=db.database)
        await conn.close()
    finally:
        await db.drop()
    conn = await asyncpg.connect(admin)
    try:
        assert await conn.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", db.role) == 0
        assert await conn.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", db.database) == 0
    finally:
        await conn.close()
