"""`python -m agent serve` as a child process, as ECS runs it: start it, wait until it listens, stop it (SIGTERM,
the agent's drain, SIGKILL if it hangs).

The one runner behind `ecs-health-agent sandbox` and every test that runs `serve`: tests/support/agent_process.py
adapts it for the tests (free port, clean environment, output kept for the secret-hygiene scan) and
tests/faults/harness.py adds the fault suite's poller and checks on top of that adapter. What happens to the
output is the caller's: the sandbox shows each line, the tests keep every byte. Both pipes are read on the event
loop until EOF, so once stop() or wait() returns the caller has all of it.

Not run through here, because they are not a long-running `serve`: one-shot commands (`check`, `healthcheck`,
tests/support/agent_process.run_agent: subprocess.run), the sandbox itself as a process (tests/test_sandbox.py),
and bench/common.py, which runs other tools next to the agent and reads their logs from files.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

STOP_TIMEOUT_SECONDS = 10.0  # the agent drains for AGENT_SHUTDOWN_GRACE_SECONDS (1 s in the sandbox), then exits
_CHUNK = 1 << 16

Stream = Literal["stdout", "stderr"]
OnLine = Callable[[Stream, bytes], None]  # (which pipe, one line with its b"\n"; the last may lack it)


class AgentExited(RuntimeError):
    """The agent ended on its own before it listened (bad configuration, port in use), or never listened."""


class AgentProcess:
    """One `python -m agent serve` child; `on_line` is called with every line it writes, in order per pipe."""

    def __init__(
        self, env: Mapping[str, str], on_line: OnLine, *, args: Sequence[str] = (), cwd: Path | None = None
    ) -> None:
        self._env = dict(env)
        self._on_line = on_line
        self._args = tuple(args)
        self._cwd = cwd
        self._proc: asyncio.subprocess.Process | None = None
        self._pumps: list[asyncio.Task[None]] = []

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    @property
    def returncode(self) -> int | None:
        """The exit code once the child has ended (negative: the signal that ended it); None before."""
        return self._proc.returncode if self._proc is not None else None

    async def start(self) -> None:
        """Start the child with exactly the given environment; its stdout and stderr are read from now on."""
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent", "serve", *self._args,
            env=self._env, cwd=self._cwd, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self._proc.stdout is not None and self._proc.stderr is not None
        self._pumps = [
            asyncio.create_task(self._pump("stdout", self._proc.stdout)),
            asyncio.create_task(self._pump("stderr", self._proc.stderr)),
        ]

    async def wait_listening(self, port: int, timeout: float) -> None:
        """Return once 127.0.0.1:port accepts a TCP connection.

        Raises AgentExited if the child ends first (its output then read to the end) or after `timeout` seconds.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self._proc is None or self._proc.returncode is not None:
                await self._drained()
                raise AgentExited(f"the agent exited with code {self.returncode}")
            try:
                async with asyncio.timeout(1.0):
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
            except (OSError, TimeoutError):
                await asyncio.sleep(0.05)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        raise AgentExited(f"the agent did not listen on 127.0.0.1:{port} within {timeout:g}s")

    def send_signal(self, sig: int) -> None:
        """Send a signal to the child (if it still runs)."""
        if self._proc is not None and self._proc.returncode is None:
            self._proc.send_signal(sig)

    async def wait(self) -> int:
        """Wait until the child exits on its own and its output is read; return its exit code."""
        assert self._proc is not None, "start() first"
        code = await self._proc.wait()
        await self._drained()
        return code

    async def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int | None:
        """SIGTERM, up to `timeout` seconds for the drain, SIGKILL if it hangs; the exit code once all output is read.

        None if the child was never started.
        """
        proc = self._proc
        if proc is None:
            return None
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        await self._drained()
        return proc.returncode

    async def _drained(self) -> None:
        if self._pumps:
            await asyncio.gather(*self._pumps)

    async def _pump(self, stream: Stream, reader: asyncio.StreamReader) -> None:
        """Hand over whole lines as they arrive; read in chunks, so no line is too long to pass."""
        pending = bytearray()
        while chunk := await reader.read(_CHUNK):
            pending += chunk
            start = 0
            while (end := pending.find(b"\n", start)) >= 0:
                self._on_line(stream, bytes(pending[start : end + 1]))
                start = end + 1
            del pending[:start]
        if pending:
            self._on_line(stream, bytes(pending))
