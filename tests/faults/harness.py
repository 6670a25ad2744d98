"""A real `serve` process for the fault suite: a poller keeping a timeline of what /ready, /status and /health
said, the process's own fds and memory read from /proc, and the secret checks when it stops.

Started and stopped by the same runner as every other test's agent and the sandbox's
(tests/support/agent_process.running_agent over agent.sandbox.agent_process); this adapter adds what only the
fault suite needs. Everything is asyncio on the test's loop (the loopback stand-ins live there too). Output is
kept in memory (and in CAPTURED) rather than only in a shared directory, so another pytest session clearing
test-artifacts/ cannot take it away before the hygiene checks read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.sandbox.agent_process import AgentProcess
from tests.faults.hygiene import assert_no_distinctive_secret
from tests.support.agent_process import REPO, Captured, agent_env, running_agent
from tests.support.ports import free_port
from tests.support.resolver.sitecustomize import HOSTS_VARIABLE
from tests.support.secrets import CAPTURED

ARTIFACTS = REPO / "test-artifacts" / "faults"
POLL_SECONDS = 0.1


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP exchange with the agent."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    elapsed: float

    def json(self) -> Any:
        return json.loads(self.body)


async def http(
    port: int, method: str, path: str, *, timeout: float = 2.0, headers: Mapping[str, str] | None = None
) -> Reply:
    """A one-shot HTTP/1.1 request over a fresh loopback connection (Connection: close)."""
    started = time.monotonic()
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
            lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
            raw = await reader.read(-1)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    return parse_reply(raw, time.monotonic() - started)


def parse_reply(raw: bytes, elapsed: float = 0.0) -> Reply:
    """Split a raw HTTP/1.1 response (read to EOF) into status, headers and body."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ValueError(f"not an HTTP response: {raw[:80]!r}")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _unchunk(body)
    return Reply(int(parts[1]), headers, body, elapsed)


def _unchunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return bytes(out)


@dataclass(frozen=True, slots=True)
class Sample:
    """What the agent said at one moment: /ready (status, HTTP code, failing), /health, and /status probes."""

    at: float  # time.monotonic()
    status: str
    ready_http: int
    health_http: int
    failing: tuple[tuple[str, str, str], ...]  # (probe, target, reason)
    probes: Mapping[tuple[str, str], Mapping[str, Any]]  # (probe, target) -> /status entry

    def code(self, probe: str, target: str) -> str | None:
        entry = self.probes.get((probe, target))
        return None if entry is None else entry.get("code")

    def describe(self) -> str:
        failing = ", ".join(f"{p}:{t} {r} {self.code(p, t)}" for p, t, r in self.failing) or "nothing failing"
        return f"{self.status} ({self.ready_http}); {failing}"


@dataclass
class LiveAgent:
    """A running `serve` process and everything it said."""

    name: str
    process: AgentProcess
    port: int
    captured: Captured
    timeline: list[Sample] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def pid(self) -> int:
        pid = self.process.pid
        assert pid is not None, f"{self.name}: the agent is not running"
        return pid

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    @property
    def bodies(self) -> list[bytes]:
        """Every HTTP body the agent answered to get()."""
        return self.captured.bodies

    async def get(self, path: str, method: str = "GET", timeout: float = 2.0) -> Reply:
        """A request whose body is kept for the secret checks."""
        reply = await http(self.port, method, path, timeout=timeout)
        self.bodies.append(reply.body)
        return reply

    async def status(self) -> dict[str, Any]:
        body: dict[str, Any] = (await self.get("/status")).json()
        return body

    async def metrics(self) -> str:
        return (await self.get("/metrics")).body.decode()

    async def metric(self, name: str, **labels: str) -> float:
        """One sample of /metrics (0 when absent), e.g. metric("db_connections_opened_total", target="default")."""
        wanted = "health_agent_" + name
        text = await self.metrics()
        for line in text.splitlines():
            if line.startswith(wanted) and _labels_match(line[len(wanted) :], labels):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    async def sample(self) -> Sample:
        ready = await self.get("/ready")
        health = await self.get("/health")
        status = await self.status()
        body = ready.json()
        return Sample(
            at=time.monotonic(),
            status=body["status"],
            ready_http=ready.status,
            health_http=health.status,
            failing=tuple((f["probe"], f["target"], f["reason"]) for f in body["failing"]),
            probes={(p["probe"], p["target"]): p for p in status["probes"]},
        )

    async def poll(self) -> None:
        """Sample every POLL_SECONDS for as long as the agent lives (run as a task)."""
        while self.running:
            with contextlib.suppress(OSError, ValueError, TimeoutError):
                self.timeline.append(await self.sample())
                self._changed.set()
            await asyncio.sleep(POLL_SECONDS)

    async def wait_for(self, predicate: Callable[[Sample], bool], timeout: float, after: float = 0.0) -> Sample:
        """The first sample taken after `after` (monotonic) for which predicate holds; fail with the last one."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for sample in self.timeline[seen:]:
                if sample.at >= after and predicate(sample):
                    return sample
            seen = len(self.timeline)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.running:
                last = self.timeline[-1].describe() if self.timeline else "no sample"
                alive = "alive" if self.running else f"exited {self.process.returncode}"
                raise AssertionError(f"{self.name}: not within {timeout:.1f}s; last: {last}; process {alive}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, 0.5)):
                    await self._changed.wait()

    async def wait_status(self, status: str, timeout: float = 15.0, after: float = 0.0) -> Sample:
        return await self.wait_for(lambda s: s.status == status, timeout, after)

    def samples_since(self, since: float, until: float | None = None) -> list[Sample]:
        return [s for s in self.timeline if s.at >= since and (until is None or s.at <= until)]

    def fds(self) -> int:
        """Open file descriptors of the agent process."""
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def rss_kib(self) -> int:
        """Resident memory of the agent process (VmRSS)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS in /proc/PID/status")

    def output(self) -> str:
        return self.captured.output()

    def log_lines(self) -> list[dict[str, Any]]:
        return self.captured.log_lines()


def _labels_match(rest: str, labels: Mapping[str, str]) -> bool:
    if not labels:
        return rest.startswith(" ")
    if not rest.startswith("{"):
        return False
    inside = rest[1 : rest.index("}")]
    pairs = dict(item.split("=", 1) for item in inside.split(",") if "=" in item)
    return all(pairs.get(k) == f'"{v}"' for k, v in labels.items())


def fault_env(extra: Mapping[str, str], hosts_file: Path | None = None) -> dict[str, str]:
    """The agent's environment: no AGENT_* or AWS_* from outside, no ~/.aws, no IMDS, plus `extra`."""
    base = {k: v for k, v in agent_env({}).items() if not k.startswith("AWS_")}
    base |= {
        "AWS_CONFIG_FILE": "/nonexistent/eha-aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/eha-aws-credentials",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    if hosts_file is not None:  # read by the tests' resolver, already on PYTHONPATH (tests/support/hermetic.py)
        base[HOSTS_VARIABLE] = str(hosts_file)
    return {**base, **extra}


@contextlib.asynccontextmanager
async def live_agent(
    name: str, env: Mapping[str, str], *args: str, hosts_file: Path | None = None, startup_timeout: float = 20.0
) -> AsyncIterator[LiveAgent]:
    """Start `python -m agent serve`, poll it, and on exit stop it and check its output for secrets."""
    port = free_port()
    full_env = fault_env({"AGENT_HOST": "127.0.0.1", "AGENT_PORT": str(port), **env}, hosts_file)
    stem = f"faults-{name}-{time.time_ns()}"

    def keep(captured: Captured) -> None:
        """Where people (and the session-wide hygiene checks) look for it."""
        CAPTURED.append(
            (name, captured.output() + "\n--- bodies ---\n" + b"\n".join(captured.bodies).decode(errors="replace"))
        )
        with contextlib.suppress(OSError):
            captured.keep(stem, ARTIFACTS)

    running = running_agent(full_env, args, port, startup_timeout=startup_timeout, stop_timeout=20.0, keep=keep)
    async with running as (process, captured):
        agent = LiveAgent(name, process, port, captured)
        poller = asyncio.create_task(agent.poll(), name=f"poll {name}")
        try:
            yield agent
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
    code, output = process.returncode, agent.output()
    assert code == 0, f"{name}: exit code {code} after SIGTERM:\n{output[-3000:]}"
    assert "Traceback" not in output, f"{name}: a traceback:\n{output[-3000:]}"
    assert_no_distinctive_secret(output, f"{name} stdout/stderr")
    for body in agent.bodies:
        assert_no_distinctive_secret(body.decode(errors="replace"), f"{name} HTTP body")
