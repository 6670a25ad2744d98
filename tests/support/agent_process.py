"""Run the real agent as a subprocess (`python -m agent ...`) and talk to it over real sockets."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.ports import free_port

REPO = Path(__file__).resolve().parents[2]
# Every output of every agent process a test starts, so the secret-hygiene test can scan them all.
OUTPUT_DIR = REPO / "test-artifacts" / "agent-output"


def agent_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The test process's environment without AGENT_* leftovers, plus `extra`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_")}
    return {**base, **extra}


def run_agent(*args: str, env: Mapping[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a one-shot command (check, healthcheck) and keep its output as a test artifact."""
    proc = subprocess.run(
        [sys.executable, "-m", "agent", *args],
        env=agent_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
    _keep(f"{args[0] if args else 'agent'}-{time.time_ns()}", proc.stdout, proc.stderr)
    return proc


@dataclass
class Response:
    status: int
    body: bytes
    elapsed: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class AgentProcess:
    """A running `serve` process on a loopback port."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    responses: list[bytes] = field(default_factory=list)

    def get(self, path: str, timeout: float = 5.0) -> Response:
        started = time.monotonic()
        url = f"http://127.0.0.1:{self.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as reply:
                status, body = reply.status, reply.read()
        except urllib.error.HTTPError as err:
            status, body = err.code, err.read()
        self.responses.append(body)
        return Response(status, body, time.monotonic() - started)

    def wait_for(self, predicate: Callable[[Any], bool], path: str = "/status", timeout: float = 20.0) -> Any:
        """Poll a JSON endpoint until predicate(body) holds; fail with the last body seen."""
        deadline = time.monotonic() + timeout
        body: Any = None
        while time.monotonic() < deadline:
            try:
                body = self.get(path).json()
                if predicate(body):
                    return body
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout}s waiting on {path}; last body: {body}")

    def probe(self, name: str, target: str = "default") -> dict[str, Any]:
        status = self.get("/status").json()
        return next(p for p in status["probes"] if p["probe"] == name and p["target"] == target)

    def log_lines(self) -> list[dict[str, Any]]:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def terminate(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


@contextmanager
def serving(env: Mapping[str, str], *args: str, startup_timeout: float = 15.0) -> Iterator[AgentProcess]:
    """Start `python -m agent serve` on a free port; stop it (SIGTERM, then kill) on exit."""
    port = free_port()
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    log_path = OUTPUT_DIR / f"serve-{port}-{time.time_ns()}.log"
    full_env = agent_env({"AGENT_HOST": "127.0.0.1", "AGENT_PORT": str(port), **env})
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent", "serve", *args],
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    agent = AgentProcess(proc, port, log_path)
    try:
        _wait_listening(agent, startup_timeout)
        yield agent
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
        (OUTPUT_DIR / f"{log_path.stem}.bodies").write_bytes(b"\n".join(agent.responses))


def _wait_listening(agent: AgentProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if agent.proc.poll() is not None:
            raise AssertionError(f"agent exited with {agent.proc.returncode}:\n{agent.log_path.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", agent.port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"agent did not listen within {timeout}s:\n{agent.log_path.read_text()}")


def _keep(name: str, stdout: str, stderr: str) -> None:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUTPUT_DIR / f"{name}.out").write_text(stdout + "\n--- stderr ---\n" + stderr)
