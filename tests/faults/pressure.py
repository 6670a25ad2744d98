"""Abusive HTTP clients against a real `serve` process whose stdout is read, stalled or closed.

The agent runs as ECS starts it by default: RLIMIT_NOFILE 1,024 (soft and hard, so raising the soft limit gains
nothing), stdout a pipe. `stalled` hands it a pipe nobody reads, already full (the awslogs driver in its default
blocking mode, stuck); `closed` one whose reader is gone (EPIPE). /health is measured by a prober in a process of
its own (tests/support/health_prober.py). Output is kept like every fault-suite agent's, for the secret checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import os
import resource
import signal
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.faults.harness import ARTIFACTS, fault_env, http
from tests.support.agent_process import REPO, Captured
from tests.support.ports import free_port
from tests.support.secrets import CAPTURED

NOFILE = 1024  # a container's default RLIMIT_NOFILE on ECS (EC2)
_CHUNK = 1 << 16


class Stdout(enum.StrEnum):
    READ = "read"
    STALLED = "stalled"
    CLOSED = "closed"  # its reader went away: EPIPE
    MISSING = "missing"  # descriptor 1 not open when the agent starts: EBADF


@dataclass
class PressuredAgent:
    """A running `serve` child, what it said on stderr (and stdout, when read), and its HTTP port."""

    name: str
    proc: asyncio.subprocess.Process
    port: int
    stdout: Stdout
    captured: Captured = field(default_factory=Captured)
    fds_peak: int = 0

    @property
    def running(self) -> bool:
        return self.proc.returncode is None

    def fds(self) -> int:
        """Open descriptors of the agent now (and the highest seen so far, in fds_peak)."""
        count = len(os.listdir(f"/proc/{self.proc.pid}/fd"))
        self.fds_peak = max(self.fds_peak, count)
        return count

    def stdout_target(self) -> str:
        """What the agent's descriptor 1 is (a path, or pipe:[inode], socket:[inode])."""
        return os.readlink(f"/proc/{self.proc.pid}/fd/1")

    async def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of /metrics, keyed by (name, sorted labels)."""
        reply = await http(self.port, "GET", "/metrics", timeout=5.0)
        self.captured.bodies.append(reply.body)
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(reply.body.decode())
            for sample in family.samples
        }

    async def wait_ready(self, timeout: float = 20.0) -> None:
        """Until /ready answers 200 (every probe passed its success threshold)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.running:
            with contextlib.suppress(OSError, TimeoutError, ValueError):
                if (await http(self.port, "GET", "/ready")).status == 200:
                    return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{self.name}: not ready within {timeout:g}s:\n{self.captured.output()[-2000:]}")

    async def stop(self) -> tuple[int | None, float]:
        """SIGTERM; (exit code, seconds it took); killed (code None) after 10 s."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(10.0):
                await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            return None, time.monotonic() - started
        return self.proc.returncode, time.monotonic() - started

    def stderr(self) -> str:
        return bytes(self.captured.stderr).decode(errors="replace")


def metric(values: Mapping[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return values.get((f"health_agent_{name}", tuple(sorted(labels.items()))), 0.0)


def ensure_descriptors(needed: int) -> None:
    """Raise this (test) process's soft RLIMIT_NOFILE so it can hold `needed` client sockets (CI runners often
    start at 1,024); fail, naming the limit, if the hard limit does not allow it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        assert hard == resource.RLIM_INFINITY or hard >= needed, f"RLIMIT_NOFILE hard limit {hard} < {needed}"
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed if hard == resource.RLIM_INFINITY else hard, hard))


def _limit_descriptors() -> None:  # runs in the child between fork and exec
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


def _limit_descriptors_without_stdout() -> None:
    _limit_descriptors()
    os.close(1)


def _fill(write_end: int) -> int:
    """Fill a pipe nobody reads to the brim; the bytes it took."""
    os.set_blocking(write_end, False)
    written = 0
    with contextlib.suppress(BlockingIOError):
        while True:
            written += os.write(write_end, b"." * 4096)
    os.set_blocking(write_end, True)
    return written


@contextlib.asynccontextmanager
async def pressured_agent(
    name: str, env: Mapping[str, str], stdout: Stdout, args: Sequence[str] = ()
) -> AsyncIterator[PressuredAgent]:
    """`python -m agent serve` with RLIMIT_NOFILE 1,024 and the given stdout; SIGKILLed if a test leaves it."""
    port = free_port()
    read_end, write_end = os.pipe()
    filler = _fill(write_end) if stdout is Stdout.STALLED else 0
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "serve", *args,
        env=fault_env({"AGENT_HOST": "127.0.0.1", "AGENT_PORT": str(port), **env}), cwd=REPO,
        stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE if stdout is Stdout.READ else write_end,
        preexec_fn=_limit_descriptors_without_stdout if stdout is Stdout.MISSING else _limit_descriptors,
    )  # fmt: skip
    os.close(write_end)
    if stdout is not Stdout.STALLED:
        os.close(read_end)
    agent = PressuredAgent(name, proc, port, stdout)
    pumps = [asyncio.create_task(_pump(proc.stderr, agent.captured.stderr))]
    if proc.stdout is not None:
        pumps.append(asyncio.create_task(_pump(proc.stdout, agent.captured.stdout)))
    try:
        await _wait_listening(agent)
        yield agent
    finally:
        if agent.running:
            proc.kill()
            await proc.wait()
        await asyncio.gather(*pumps)
        if stdout is Stdout.STALLED:
            agent.captured.stdout.extend(_drain(read_end)[filler:])
            os.close(read_end)
        _keep(agent)


async def _pump(reader: asyncio.StreamReader | None, into: bytearray) -> None:
    if reader is not None:
        while chunk := await reader.read(_CHUNK):
            into.extend(chunk)


async def _wait_listening(agent: PressuredAgent, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not agent.running:
            break
        with contextlib.suppress(OSError, TimeoutError, ValueError):
            if (await http(agent.port, "GET", "/health", timeout=1.0)).status == 200:
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{agent.name}: not answering /health (exit {agent.proc.returncode}):\n{agent.stderr()}")


def _drain(read_end: int) -> bytes:
    """What a stalled pipe holds once its writer has exited (the test's filler first)."""
    os.set_blocking(read_end, False)
    data = bytearray()
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(read_end, _CHUNK):
            data.extend(chunk)
    return bytes(data)


def _keep(agent: PressuredAgent) -> None:
    bodies = b"\n".join(agent.captured.bodies).decode(errors="replace")
    CAPTURED.append((agent.name, agent.captured.output() + "\n--- bodies ---\n" + bodies))
    with contextlib.suppress(OSError):
        agent.captured.keep(f"faults-{agent.name}-{time.time_ns()}", ARTIFACTS)


@dataclass
class HealthProber:
    """tests/support/health_prober.py running in a process of its own until stop()."""

    proc: asyncio.subprocess.Process

    @classmethod
    async def start(cls, port: int, every: float = 0.01, limit: float = 60.0) -> HealthProber:
        """Probing every `every` seconds (100 a second: the p99 of a 3 s row is not just its slowest check)."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.support.health_prober", str(port), str(limit), str(every),
            cwd=REPO, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdout is not None
        assert await proc.stdout.readline() == b"probing\n", "the health prober did not start"
        return cls(proc)

    async def stop(self) -> list[tuple[float, int, float]]:
        """Its samples: [(started_at, status, elapsed), ...]."""
        self.proc.send_signal(signal.SIGTERM)
        out, _ = await self.proc.communicate()
        samples: list[Any] = json.loads(out)
        return [(float(at), int(status), float(elapsed)) for at, status, elapsed in samples]


def p99(samples: Sequence[tuple[float, int, float]]) -> float:
    elapsed = sorted(e for _, _, e in samples) or [float("inf")]
    return elapsed[min(len(elapsed) - 1, int(len(elapsed) * 0.99))]


# -- the abusers ---------------------------------------------------------------------------------------------------

MALFORMED = (
    b"GET /health HTTP/1.1\r\nBad Header Without Colon\r\n\r\n",
    b"GET /" + b"a" * 8192 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
)


@contextlib.asynccontextmanager
async def idle_connections(port: int, count: int) -> AsyncIterator[tuple[list[asyncio.StreamWriter], float]]:
    """Open `count` connections that never send a byte, 100 at once with a 50 ms pause between hundreds (a flood
    that builds up over about two seconds, as idle clients pile up, rather than one SYN storm that only measures the
    accept queue of a loaded test host); yield (them, seconds the opening took); close them on exit."""
    writers: list[asyncio.StreamWriter] = []

    async def one() -> None:
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writers.append(writer)

    started = time.monotonic()
    try:
        for _ in range(count // 100):
            await asyncio.gather(*(one() for _ in range(100)))
            await asyncio.sleep(0.05)
        yield writers, time.monotonic() - started
    finally:
        for writer in writers:
            writer.close()


@dataclass
class Dribbler:
    """One slow-headers client: when it connected, and when the server closed on it (None: still open)."""

    opened: float = 0.0
    closed_after: float | None = None


async def slow_headers(port: int, count: int, seconds: float) -> list[Dribbler]:
    """Slowloris: `count` clients each sending a request's headers a byte every 0.5 s, for `seconds` (all of them
    connect at once); Dribbler.opened is time.monotonic()."""
    request = b"GET /health HTTP/1.1\r\nHost: slow\r\nX-Pad: " + b"p" * 400

    async def dribble(client: Dribbler) -> None:
        with contextlib.suppress(OSError):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            client.opened = time.monotonic()
            try:
                for byte in request:
                    writer.write(bytes([byte]))
                    await writer.drain()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.5):
                            if await reader.read(1024) == b"":  # the server closed on us
                                break
                client.closed_after = time.monotonic() - client.opened
            except ConnectionError:
                client.closed_after = time.monotonic() - client.opened
            finally:
                writer.close()

    clients = [Dribbler() for _ in range(count)]
    tasks = [asyncio.create_task(dribble(c)) for c in clients]
    await asyncio.sleep(seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return clients


async def malformed_flood(port: int, seconds: float, clients: int = 5) -> int:
    """Malformed requests on fresh connections, `clients` at a time, for `seconds`; how many were sent."""
    sent = 0
    deadline = time.monotonic() + seconds

    async def client(index: int) -> None:
        nonlocal sent
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, TimeoutError):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                try:
                    writer.write(MALFORMED[(sent + index) % len(MALFORMED)])
                    sent += 1
                    async with asyncio.timeout(1.0):
                        await reader.read()
                finally:
                    writer.close()

    await asyncio.gather(*(client(i) for i in range(clients)))
    return sent


async def ask_for_dumps(agent: PressuredAgent, count: int, every: float = 0.01) -> None:
    """SIGUSR1 `count` times (an operator asking for state dumps): with stdout stalled, what fills its queue."""
    for _ in range(count):
        agent.proc.send_signal(signal.SIGUSR1)
        await asyncio.sleep(every)
