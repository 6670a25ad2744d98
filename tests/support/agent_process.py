"""Run the real agent as a subprocess (`python -m agent ...`) and talk to it over real sockets.

`serve` runs under the sandbox's runner (agent.sandbox.agent_process.AgentProcess: start, wait until listening,
SIGTERM then kill), the one the demo uses. What only tests need is here: a free port, an environment without
leftovers, a blocking HTTP client, and every byte an agent wrote kept under test-artifacts/agent-output/ for
tests/test_zz_secret_hygiene.py. The fault suite (tests/faults/harness.py) builds on running_agent() too.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.sandbox.agent_process import AgentExited, AgentProcess, Stream
from tests.support.ports import free_port

REPO = Path(__file__).resolve().parents[2]
# Every output of every agent process a test starts, so the session-finish scan (tests/support/leak_scan.py) can
# read them all: one directory per pytest session (its pid), so two sessions at once neither empty nor scan each
# other's output. EHA_AGENT_OUTPUT_DIR overrides it (the scan's own tests point inner sessions at a tmp dir).
OUTPUT_ROOT = REPO / "test-artifacts" / "agent-output"
OUTPUT_DIR = Path(os.environ.get("EHA_AGENT_OUTPUT_DIR") or OUTPUT_ROOT / f"session-{os.getpid()}")

SEPARATOR = "\n--- stderr ---\n"


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
    _write(OUTPUT_DIR / f"{args[0] if args else 'agent'}-{time.time_ns()}.out", proc.stdout + SEPARATOR + proc.stderr)
    return proc


@dataclass
class Captured:
    """Everything one agent process said: stdout and stderr byte for byte, and the HTTP bodies it answered.

    Kept in memory, so another pytest session emptying test-artifacts/ cannot take it away mid-test.
    """

    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    bodies: list[bytes] = field(default_factory=list)

    def on_line(self, stream: Stream, line: bytes) -> None:
        """The runner's output callback."""
        (self.stdout if stream == "stdout" else self.stderr).extend(line)

    def output(self) -> str:
        return bytes(self.stdout).decode(errors="replace") + SEPARATOR + bytes(self.stderr).decode(errors="replace")

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON log records on stdout."""
        lines = bytes(self.stdout).decode(errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def keep(self, stem: str, *more: Path) -> None:
        """Write STEM.out and STEM.bodies to OUTPUT_DIR (and each directory in `more`)."""
        for directory in (OUTPUT_DIR, *more):
            _write(directory / f"{stem}.out", self.output())
            _write(directory / f"{stem}.bodies", b"\n".join(self.bodies))


def _write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)  # a concurrent pytest session may have just emptied it
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)


@contextlib.asynccontextmanager
async def running_agent(
    env: Mapping[str, str],
    args: Sequence[str],
    port: int,
    *,
    startup_timeout: float,
    stop_timeout: float,
    keep: Callable[[Captured], None],
) -> AsyncIterator[tuple[AgentProcess, Captured]]:
    """`python -m agent serve` with exactly `env`, listening on `port`; on exit stopped and its output kept.

    Raises AssertionError (with the output) if it exits or does not listen within startup_timeout seconds.
    """
    captured = Captured()
    process = AgentProcess(env, captured.on_line, args=args, cwd=REPO)
    try:
        await process.start()
        try:
            await process.wait_listening(port, startup_timeout)
        except AgentExited as exc:
            raise AssertionError(f"{exc}:\n{captured.output()[-3000:]}") from None
        yield process, captured
    finally:
        await process.stop(stop_timeout)
        keep(captured)


@dataclass
class Response:
    status: int
    body: bytes
    elapsed: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class AgentHttp:
    """A blocking HTTP client of the agent on 127.0.0.1:port (run it in a thread from async code)."""

    port: int
    responses: list[bytes] = field(default_factory=list)  # every body read, for the secret-hygiene scan

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


class ServedAgent(AgentHttp):
    """A `serve` process started by serving(): the runner, everything it said, and a blocking HTTP client."""

    def __init__(self, port: int, process: AgentProcess, captured: Captured) -> None:
        super().__init__(port, captured.bodies)
        self.process = process
        self.captured = captured

    def log_lines(self) -> list[dict[str, Any]]:
        return self.captured.log_lines()


@contextlib.asynccontextmanager
async def serving(env: Mapping[str, str], *args: str, startup_timeout: float = 15.0) -> AsyncIterator[ServedAgent]:
    """Start `python -m agent serve` on a free port; stop it (SIGTERM, then kill) on exit and keep its output."""
    port = free_port()
    full_env = agent_env({"AGENT_HOST": "127.0.0.1", "AGENT_PORT": str(port), **env})
    stem = f"serve-{port}-{time.time_ns()}"
    running = running_agent(full_env, args, port, startup_timeout=startup_timeout, stop_timeout=15.0, keep=_keep(stem))
    async with running as (process, captured):
        yield ServedAgent(port, process, captured)


def _keep(stem: str) -> Callable[[Captured], None]:
    return lambda captured: captured.keep(stem)
